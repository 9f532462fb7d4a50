"""The dealer's leak run: callees killed mid-call, against a real `gos-websocket server`.

One caller; per round a fresh callee registers ``com.acme.victim``, the caller sends it
``batch`` calls, the callee receives every INVOCATION and then drops its TCP connection (no
close handshake, no GOODBYE: a crashed callee). Every call must end with ERROR
``wamp.error.canceled`` well within the call's ``timeout`` option. Sessions, registrations and
calls in flight (``/metrics``) and the server's RSS are read after a warm-up round and at the
end, once the killed callees' sessions are gone.

    .venv/bin/python -m tests.hostile.dealer_leak --calls 10000

prints one JSON object (``LeakReport``); tests/wamp2/test_dealer_leak.py runs it at 500 calls.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gos_web_socket.app.testing import RawPeer
from tests.hostile.harness import MiB, rss
from tests.ops.conftest import scrape
from tests.support.process import ServerProcess, server_env

ROUTING = Path(__file__).parents[1] / "wamp2" / "dealer_routing.yaml"
PROCEDURE = "com.acme.victim"
TIMEOUT_MS = 10_000
"""Each CALL's ``timeout`` option: the ERROR must come before it (the kill answers at once)."""
LIMITS = {
    "MESSAGES_PER_SECOND": 100_000,
    "MESSAGES_BURST": 10_000,
    "FRAMES_PER_SECOND": 100_000,
    "FRAMES_BURST": 10_000,
    "MAX_PENDING_CALLS": 1_000,
    "MAX_PENDING_INVOCATIONS": 1_000,
}
"""One caller sends every call of a round at once: the flood budgets are not what is measured."""


@dataclass
class Snapshot:
    """What the server holds at one moment."""

    sessions: int
    registrations: int
    calls_in_flight: int
    rss_mib: float


@dataclass
class LeakReport:
    calls: int
    batch: int
    canceled: int = 0
    other_answers: list[Any] = field(default_factory=list)
    worst_error_s: float = 0.0
    """Longest wait from a callee's kill to its last call's ERROR."""
    seconds: float = 0.0
    before: Snapshot | None = None
    after: Snapshot | None = None

    @property
    def rss_growth_mib(self) -> float:
        assert self.before is not None and self.after is not None
        return self.after.rss_mib - self.before.rss_mib


async def snapshot(server: ServerProcess, sessions: int) -> Snapshot:
    """The server's counts once at most ``sessions`` sessions are left (killed callees'
    sessions end when the server reads their connection's end)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:
        metrics = await scrape(server.metrics_port)
        left = int(metrics["gos_websocket_connections"])
        if left <= sessions or loop.time() > deadline:
            assert server.process is not None
            return Snapshot(
                left,
                int(metrics["gos_websocket_registrations"]),
                int(metrics["gos_websocket_calls_in_flight"]),
                round(rss(server.process.pid) / MiB, 1),
            )
        await asyncio.sleep(0.05)


async def joined(server: ServerProcess) -> RawPeer:
    peer = await RawPeer.connect(server.ws_url)
    peer.send([1, "realm1", {"roles": {"callee": {}, "caller": {}}}])
    welcome = await peer.receive()
    assert welcome[0] == 2, welcome
    return peer


async def round_of(server: ServerProcess, caller: RawPeer, first: int, report: LeakReport) -> None:
    """One callee, ``report.batch`` calls to it, the callee killed, every call answered."""
    callee = await joined(server)
    callee.send([64, 1, {}, PROCEDURE])
    assert (await callee.receive())[:2] == [65, 1]
    requests = range(first, first + report.batch)
    for request in requests:
        caller.send([48, request, {"timeout": TIMEOUT_MS}, PROCEDURE, [request]])
    for _ in requests:
        assert (await callee.receive(timeout=30))[0] == 68
    killed = time.monotonic()
    kill(callee)
    for _ in requests:
        answer = await caller.receive(timeout=TIMEOUT_MS / 1000)
        if answer[:2] == [8, 48] and answer[4] == "wamp.error.canceled":
            report.canceled += 1
        else:
            report.other_answers.append(answer)
    report.worst_error_s = max(report.worst_error_s, time.monotonic() - killed)


def kill(peer: RawPeer) -> None:
    """Drop the TCP connection: no WebSocket close, no GOODBYE (a crashed callee)."""
    protocol = peer._protocol  # noqa: SLF001  (the raw peer has no abort of its own)
    assert protocol is not None and protocol.transport is not None
    protocol.transport.abort()


async def run(calls: int, batch: int = 100) -> LeakReport:
    """Start a server, run ``calls`` calls in rounds of ``batch``, stop it; the report."""
    env = server_env(SERVER__ROUTER__RESOURCES=f'["{ROUTING}"]')
    env |= {f"GOS_WEB_SOCKET__SERVER__LIMITS__{key}": str(value) for key, value in LIMITS.items()}
    server = await ServerProcess(env).start()
    report = LeakReport(calls, batch)
    try:
        await (await server.connect()).close()  # the server listens
        caller = await joined(server)
        await round_of(server, caller, 1, report)  # warm-up: imports, first allocations
        report.before = await snapshot(server, 1)
        started = time.monotonic()
        for first in range(batch + 1, calls + 1, batch):
            await round_of(server, caller, first, report)
        report.seconds = round(time.monotonic() - started, 2)
        report.after = await snapshot(server, 1)
        caller.close()
    finally:
        await server.stop()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args(argv)
    report = asyncio.run(run(args.calls, args.batch))
    out = asdict(report) | {"rss_growth_mib": round(report.rss_growth_mib, 1)}
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0 if report.canceled == args.calls and not report.other_answers else 1


if __name__ == "__main__":
    sys.exit(main())
