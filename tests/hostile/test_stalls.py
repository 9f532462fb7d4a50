"""Each attack kind alone holds the server's event loop for under 50 ms at a time (issue 24).

The server runs in this process so that its loop can be watched (tests/hostile/stalls.py);
the attackers run in a process of their own. Asserted on the CPU time the loop spent between
two 1 ms ticks: the wall-clock gap also counts the time this shared machine gave to other
processes (both are printed by ``python -m tests.hostile.stalls``).
"""

from __future__ import annotations

import asyncio

import pytest

from tests.hostile.attacks import EXPECTED
from tests.hostile.harness import MIXED, PLAN
from tests.hostile.stalls import UNBOUNDED, longest_stall, stall_under

pytestmark = pytest.mark.slow  # hostile load: attackers of each kind, the loop watched

STALL_MS = 50


@pytest.mark.parametrize(("kind", "count"), PLAN)
def test_each_kind_alone_holds_the_loop_under_50_ms(kind: str, count: int) -> None:
    """The longest stall while ``count`` attackers of ``kind`` run is under 50 ms of CPU, and
    each attacker got its documented answer."""
    stall = asyncio.run(longest_stall(kind, count))
    assert stall.cpu_ms < STALL_MS, f"{kind}: the loop was held {stall.cpu_ms:.0f} ms"
    assert set(stall.answers) <= EXPECTED[kind], f"{kind}: answers {stall.answers}"


def test_without_the_frame_budgets_a_fragment_flood_holds_the_loop_for_seconds() -> None:
    """The measure can fail: with the frame budgets lifted, 8 fragment floods hold the loop
    for more than 500 ms (seconds, in fact) and are not closed."""
    stall = asyncio.run(longest_stall("fragment_flood", 8, **UNBOUNDED))
    assert stall.cpu_ms > 500, f"only {stall.cpu_ms:.0f} ms without the budgets"


def test_all_kinds_at_once_hold_the_loop_under_50_ms_and_every_attacker_gets_its_answer() -> None:
    """The 200 attackers of the mixed run at once: no turn over 50 ms of CPU, the connect
    storm included (33 to 87 ms while autobahn formatted each connection's options), and
    every attacker gets its kind's answer, none left open."""
    stall = asyncio.run(stall_under(MIXED))
    assert stall.cpu_ms < STALL_MS, f"the loop was held {stall.cpu_ms:.0f} ms"
    assert "open" not in stall.answers, f"answers {stall.answers}"
    allowed = set().union(*(EXPECTED[kind] for kind in MIXED))
    assert set(stall.answers) <= allowed, f"answers {stall.answers}"
