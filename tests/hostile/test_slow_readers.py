"""Slow readers cannot take the server's memory nor the reading subscribers' pushes (issue 24,
item 2): 100 subscribers that never read beside 50 that do, 20,000 pushes of 1 KiB, paced at
2,000/s and in one burst, on a server process with the default settings
(``tests.hostile.slow_readers``; about a minute a run on 2 cores)."""

from __future__ import annotations

import asyncio

import pytest

from tests.hostile.slow_readers import SLOW, STALLERS, Result, run

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # a run is a minute or two

RSS_MARGIN = 1.2
"""Peak RSS may pass base + ``max_outgoing_total`` by 20% (Python objects, libzmq queues)."""


@pytest.fixture(scope="module", params=["paced", "burst"])
def slow_run(request: pytest.FixtureRequest) -> Result:
    """One run per mode, with its own event loop (the server is a process)."""
    return asyncio.run(run(request.param))


def test_peak_memory_stays_within_the_global_budget(slow_run: Result) -> None:
    """Server RSS peaks at most 20% over base + max_outgoing_total (64 MiB by default)."""
    bound = (slow_run.rss_base_mib + slow_run.max_outgoing_total_mib) * RSS_MARGIN
    assert slow_run.hwm_mib <= bound, slow_run


def test_memory_comes_back_once_the_slow_readers_are_gone(slow_run: Result) -> None:
    """RSS after the run is within 20% of the base (the backlogs' pages handed back)."""
    assert slow_run.rss_after_mib <= slow_run.rss_base_mib * 1.2, slow_run


def test_reading_subscribers_lose_nothing_and_are_not_cut_off(slow_run: Result) -> None:
    """Every push reached each of the 50 reading subscribers live; none was cut off."""
    assert (slow_run.readers_lost, slow_run.readers_cut_off) == (0, 0), slow_run


def test_every_non_reading_subscriber_is_cut_off(slow_run: Result) -> None:
    """The 100 clients that never read are the ones cut off, all of them."""
    assert slow_run.slow_cut_off == SLOW, slow_run


SCENARIO_TRIES = 3
"""Runs of the history scenario at most: it needs the stallers cut off, and a burst that ends
before their backlog passes ``max_outgoing_buffer`` cuts nobody (nothing to recover; seen in
about one run of three here). Only that set-up is retried, never a loss."""


@pytest.fixture(scope="module")
def history_run() -> Result:
    """A burst on a route with history; readers recover, ``STALLERS`` of them are cut off."""
    for _ in range(SCENARIO_TRIES):
        result = asyncio.run(run("burst", history=True))
        if result.readers_lost or result.incomplete_recoveries:
            return result  # a loss is the test's to report, not a set-up to retry
        if result.readers_cut_off >= STALLERS:
            return result
    return result


def test_in_a_burst_every_push_reaches_every_reader_live_or_by_recovery(
    history_run: Result,
) -> None:
    """Readers cut off by the burst (the stallers) reconnect and recover: no reader lacks a
    push, and every recovery after a cut-off is complete."""
    assert history_run.readers_cut_off >= STALLERS and history_run.readers_recovered > 0
    assert (history_run.readers_lost, history_run.incomplete_recoveries) == (0, 0), history_run
