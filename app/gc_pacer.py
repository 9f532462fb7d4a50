"""Full garbage collections when the server is calm, not in the middle of a storm.

CPython starts a full collection (of its oldest generation) whenever the objects that survived
the young collections have grown by a quarter. A mass reconnect builds every returning client's
objects within seconds, so it sets off one full collection after another, and each stops the
event loop for as long as it takes to scan every connection's objects: 43 to 541 ms per worker
with 5,000 connections on the project's machine, the longest waits of the pushes in
``bench.presence_storm`` (bench/results/issue27/storm-gc/). The young collections cost a few ms and
stay as they are; ``GcPacer`` takes the full one over: at most once every ``every`` seconds
(``server.gc_full_every``), when nothing new reached the oldest generation it skips it, while
clients arrive or leave in numbers it waits for calm, and ``OVERDUE`` intervals late it runs
anyway, so that a server that is never calm still frees its cyclic garbage.

After each run the survivors are frozen (``gc.freeze``): the next run scans only what came
since, not every live connection again (127 to 197 ms per 5,000 here). Frozen objects are still
freed by their reference counts, and a connection is (its cycles are cut when its departure is
done: ``Client.release``); cyclic garbage made of frozen objects (a handler's, say) waits for
the ``DEEP_EVERY``-th run, which unfreezes and scans everything first.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

NEVER = 1 << 30
"""A threshold of the oldest generation that CPython's own trigger does not reach."""
LOOK_EVERY = 1.0
"""Seconds between two looks for calm once a full collection is due."""
OVERDUE = 4
"""A full collection due for this many intervals runs, calm or not."""
DEEP_EVERY = 10
"""Every this many runs, the collection scans the frozen objects too (``collect``)."""
SLOW = 0.05
"""A full collection longer than this (seconds) is logged at INFO."""
THREE_GENERATIONS = sys.version_info < (3, 14) and getattr(sys, "_is_gil_enabled", lambda: True)()
"""CPython's collector as this module knows it (3.11 to 3.13 with the GIL): 3.14's incremental
one and the free-threaded build count and trigger otherwise, and are left alone."""

_pacing: list[GcPacer] = []
_thresholds: tuple[int, int, int] | None = None
"""CPython's thresholds while any pacer runs (a process may run several servers, tests do)."""


class GcPacer:
    """Runs CPython's full collection itself, every ``every`` seconds at most, when
    ``churning()`` says no storm is under way; ``every`` 0 leaves CPython's trigger alone."""

    def __init__(self, every: float, churning: Callable[[], bool]) -> None:
        self.every = every
        self._churning = churning
        self._timer: asyncio.TimerHandle | None = None
        self._due_since = 0.0
        self.runs = 0
        """Full collections this pacer ran."""
        self.longest = 0.0
        """Seconds of the longest of them."""

    @property
    def pacing(self) -> bool:
        return self in _pacing

    def start(self) -> None:
        """Turn CPython's full-collection trigger off and look again in ``every`` seconds."""
        global _thresholds
        if self.every <= 0 or self.pacing or not THREE_GENERATIONS:
            return
        if not _pacing:
            _thresholds = gc.get_threshold()
            young, middle, _oldest = _thresholds
            gc.set_threshold(young, middle, NEVER)
        _pacing.append(self)
        self._due_since = time.monotonic() + self.every
        self._schedule(self.every)

    def stop(self) -> None:
        """Stop looking; the last pacer to stop hands the full collections back to CPython
        (its thresholds as they were)."""
        global _thresholds
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.pacing:
            return
        _pacing.remove(self)
        if not _pacing and _thresholds is not None:
            gc.set_threshold(*_thresholds)
            _thresholds = None
            gc.unfreeze()  # what the runs froze is CPython's to collect again

    def _schedule(self, delay: float) -> None:
        self._timer = asyncio.get_running_loop().call_later(delay, self._look)

    def _look(self) -> None:
        next_look = self.every
        try:
            now = time.monotonic()
            if gc.get_count()[2] == 0:
                # No middle-generation collection since the last full one: nothing new in the
                # oldest generation to scan.
                self._due_since = now + self.every
                return
            overdue = now - self._due_since >= (OVERDUE - 1) * self.every
            if self._churning() and not overdue:
                next_look = LOOK_EVERY
                return
            self.collect()
            self._due_since = time.monotonic() + self.every
        finally:  # whatever happened, the next look comes: the trigger stays ours
            self._schedule(next_look)

    def collect(self) -> int:
        """One full collection now, of what came since the last (every ``DEEP_EVERY``-th
        run: of everything), then freeze the survivors; returns the unreachable objects."""
        deep = self.runs % DEEP_EVERY == DEEP_EVERY - 1
        started = time.perf_counter()
        if deep:
            gc.unfreeze()
        found = gc.collect()
        gc.freeze()
        took = time.perf_counter() - started
        self.runs += 1
        self.longest = max(self.longest, took)
        level = logging.INFO if took > SLOW else logging.DEBUG
        what = "deep garbage collection" if deep else "full garbage collection"
        logger.log(level, "%s: %d unreachable, %.0f ms", what, found, took * 1000)
        return found
