"""``GcPacer``: the full garbage collections run when the server is calm, every so often, and
never in the middle of a storm unless overdue."""

from __future__ import annotations

import asyncio
import gc
import weakref

from gos_web_socket.app.gc_pacer import DEEP_EVERY, NEVER, GcPacer
from tests.support.server import RUNTIME, make_container, service
from tests.support.waiting import eventually


class Cyclic:
    """A weak-referenceable object in a reference cycle: only a full collection frees it once
    it reached the oldest generation."""

    def __init__(self) -> None:
        self.me = self


def old_garbage() -> weakref.ref[Cyclic]:
    """A cycle moved to the oldest generation, then let go; a middle collection counted."""
    probe = Cyclic()
    ref = weakref.ref(probe)
    gc.collect(1)  # promoted: young collections no longer look at it
    gc.collect(1)
    del probe
    return ref


async def test_a_calm_server_gets_its_full_collection_and_cpython_s_trigger_is_off() -> None:
    """Started, the pacer turns CPython's full-collection trigger off, runs one itself once
    ``every`` passed (the old cycle is freed), and stop() puts the thresholds back."""
    saved = gc.get_threshold()
    pacer = GcPacer(0.05, churning=lambda: False)
    pacer.start()
    try:
        assert gc.get_threshold() == (saved[0], saved[1], NEVER)
        ref = old_garbage()
        await eventually(lambda: ref() is None, 5.0, "the pacer's full collection")
        assert pacer.runs >= 1
    finally:
        pacer.stop()
    assert gc.get_threshold() == saved


async def test_a_storm_defers_the_full_collection_until_calm_or_overdue() -> None:
    """While ``churning()`` is true the due collection waits (looking again every second);
    when calm returns it runs."""
    storm = True
    pacer = GcPacer(0.5, churning=lambda: storm)
    pacer.start()
    try:
        ref = old_garbage()
        await asyncio.sleep(0.8)  # due at 0.5 s (the storm: look again at 1.5), overdue at 2
        assert pacer.runs == 0
        assert ref() is not None
        storm = False
        await eventually(lambda: pacer.runs == 1, 1.1, "a collection once calm, not overdue")
        assert ref() is None
    finally:
        pacer.stop()


async def test_a_storm_that_never_ends_still_gets_its_collection_when_overdue() -> None:
    """A server that is never calm is collected ``OVERDUE`` intervals after the last time."""
    pacer = GcPacer(0.05, churning=lambda: True)
    pacer.start()
    try:
        old_garbage()
        await asyncio.sleep(0.1)
        assert pacer.runs == 0  # due, not overdue: it waits for calm
        await eventually(lambda: pacer.runs >= 1, 5.0, "the overdue collection")
    finally:
        pacer.stop()


async def test_zero_leaves_cpython_in_charge() -> None:
    """``server.gc_full_every: 0``: the thresholds stay as CPython has them."""
    saved = gc.get_threshold()
    pacer = GcPacer(0, churning=lambda: False)
    pacer.start()
    assert gc.get_threshold() == saved
    pacer.stop()


async def test_the_runtime_paces_the_server_s_collections() -> None:
    """A server's runtime starts the pacer with ``server.gc_full_every`` and stops it."""
    saved = gc.get_threshold()
    container = make_container(gc_full_every=30)
    runtime = service(container, RUNTIME)
    await runtime.start()
    try:
        assert runtime.gc.every == 30
        assert gc.get_threshold()[2] == NEVER
        assert not runtime.server.churning  # nobody arriving or leaving
    finally:
        await runtime.stop()
    assert gc.get_threshold() == saved


async def test_two_servers_in_one_process_hand_the_trigger_back_once_both_stopped() -> None:
    """Pacers stopped in any order: CPython's thresholds come back when the last one stops,
    not before (the other still paces) and not the paced ones (which would stay for good)."""
    saved = gc.get_threshold()
    first, second = GcPacer(30, churning=lambda: False), GcPacer(30, churning=lambda: False)
    first.start()
    second.start()
    first.stop()
    assert gc.get_threshold()[2] == NEVER
    second.stop()
    assert gc.get_threshold() == saved


async def test_a_look_that_fails_still_schedules_the_next() -> None:
    """A ``churning`` that raises does not leave the trigger off with nobody looking."""
    looks: list[int] = []

    def churning() -> bool:
        looks.append(1)
        raise RuntimeError("a broken probe")

    pacer = GcPacer(0.05, churning=churning)
    pacer.start()
    try:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, _ctx: None)
        for _ in range(2):
            old_garbage()
            count = len(looks)
            await eventually(lambda: len(looks) > count, 5.0, "the next look")  # noqa: B023
    finally:
        pacer.stop()


async def test_survivors_are_frozen_and_the_deep_run_frees_their_cycles() -> None:
    """After a run its survivors are out of the next runs' scans; a cycle among them that is
    dropped later is freed by the ``DEEP_EVERY``-th run, which scans everything."""
    pacer = GcPacer(0.02, churning=lambda: False)
    pacer.start()
    try:
        survivor = Cyclic()
        ref = weakref.ref(survivor)
        gc.collect(1)  # something for the first run to look at
        await eventually(lambda: pacer.runs >= 1, 5.0, "the first run")
        assert gc.get_freeze_count() > 0
        assert survivor not in gc.get_objects()  # frozen: not scanned
        del survivor
        runs = pacer.runs
        while pacer.runs % DEEP_EVERY != 0:  # the runs before the deep one leave it
            assert ref() is not None
            gc.collect(1)
            await eventually(lambda: pacer.runs > runs, 5.0, "the next run")  # noqa: B023
            runs = pacer.runs
        assert ref() is None
    finally:
        pacer.stop()
