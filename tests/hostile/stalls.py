"""The event loop's longest stall while one attack kind runs alone (issue 24: under 50 ms).

The server runs in this process, so that its loop can be watched (``Ticker``: the largest gap
between 1 ms ticks, in wall and in CPU time), with the shipped limits and the demo handlers the
attacks use; the attackers run in a crowd process of their own (tests/hostile/crowd.py).
``python -m tests.hostile.stalls [--unbounded] [KIND...]`` prints one row per kind; with
``--unbounded`` the frame budgets are lifted (``UNBOUNDED``), which gives the "before" figure;
``--mixed`` runs every kind at once (``MIXED``, 200 attackers) and adds the p99 of the loop's
CPU time between two ticks; ``--limit KEY=VALUE`` overrides a ``server.limits`` setting.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import dataclass
from typing import Any

from gos_web_socket.app.demo.handlers import AcmeRpc, AcmeTopic
from gos_web_socket.settings.models import load_settings
from tests.hostile.attacks import Outcome
from tests.hostile.harness import MIXED, PLAN, _Child
from tests.support.loop_watch import Ticker
from tests.support.server import running_server

UNBOUNDED = {
    "frames_per_second": 1e9,
    "frames_burst": 10**9,
    "frames_per_turn": 10**9,
    "read_bytes_per_turn": 10**12,
}
"""The frame budgets as good as absent: the server before issue 24's item 1."""


@dataclass
class Stall:
    """One kind's run: the loop's longest stall (ms, wall and CPU) and the attackers' answers."""

    wall_ms: float
    cpu_ms: float
    answers: dict[str, int]
    cpu_p99_ms: float = 0.0


async def longest_stall(kind: str, count: int, **limits: Any) -> Stall:
    """``count`` attackers of ``kind`` at once against a fresh in-process server: the loop's
    longest stall while they ran (``Ticker``), and the answers they got (``close 1008``: n)."""
    return await stall_under({kind: count}, **limits)


async def stall_under(plan: dict[str, int], **limits: Any) -> Stall:
    """The attackers of ``plan`` (kind: count) at once: as ``longest_stall``."""
    shipped = load_settings().server.limits.model_dump() | limits
    async with running_server(topics=[AcmeTopic()], rpcs=[AcmeRpc()], limits=shipped) as server:
        crowd = await _Child.start("tests.hostile.crowd", "127.0.0.1", server.port)
        try:
            with Ticker() as ticker:
                answer = await crowd.ask(json.dumps(plan), timeout=60)
        finally:
            await crowd.stop()
    answers: dict[str, int] = {}
    for outcome in (Outcome(**o) for o in answer):
        answers[outcome.answer] = answers.get(outcome.answer, 0) + 1
    return Stall(ticker.longest_ms, ticker.longest_cpu_ms, answers, ticker.cpu_ms(0.99))


async def _report(kinds: list[str], limits: dict[str, Any]) -> None:
    counts = dict(PLAN)
    for kind in kinds:
        stall = await longest_stall(kind, counts[kind], **limits)
        figures = f"wall {stall.wall_ms:7.1f} ms  cpu {stall.cpu_ms:7.1f} ms"
        print(f"{kind:<24}{counts[kind]:>4}  {figures}  {stall.answers}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kinds", nargs="*", help="attack kinds (default: every kind of PLAN)")
    parser.add_argument("--unbounded", action="store_true", help="lift the frame budgets")
    parser.add_argument("--mixed", action="store_true", help="every kind at once (MIXED)")
    parser.add_argument("--limit", action="append", default=[], help="KEY=VALUE, repeatable")
    args = parser.parse_args()
    limits: dict[str, Any] = dict(UNBOUNDED if args.unbounded else {})
    limits |= dict(item.split("=", 1) for item in args.limit)
    if args.mixed:
        stall = asyncio.run(stall_under(MIXED, **limits))
        print(
            f"mixed {sum(MIXED.values())}: wall {stall.wall_ms:.1f} ms, cpu {stall.cpu_ms:.1f} ms,"
            f" cpu p99 {stall.cpu_p99_ms:.2f} ms  {stall.answers}"
        )
        return
    kinds = args.kinds or [kind for kind, _ in PLAN]
    asyncio.run(_report(kinds, limits))


if __name__ == "__main__":
    main()
