"""The dealer's leak run (tests/hostile/dealer_leak.py) at 500 calls, on a real server process."""

from __future__ import annotations

from tests.hostile.dealer_leak import run


async def test_killed_callees_leave_nothing_behind() -> None:
    """500 calls to 5 callees killed mid-call: every call ends canceled within its timeout,
    and the server is back to one session, no registration and no call in flight."""
    report = await run(500, batch=100)
    assert report.canceled == 500, report.other_answers[:3]
    assert report.worst_error_s < 10
    assert report.after is not None
    assert (report.after.sessions, report.after.registrations) == (1, 0)
    assert report.after.calls_in_flight == 0
    assert report.rss_growth_mib < 50, report  # generous: the run's allocations, not a leak
