"""The server-wide budget for bytes queued to clients (``server.max_outgoing_total``).

Each client may leave ``max_outgoing_buffer`` bytes unread for a while (output.py); a hundred
slow clients at that tolerance would still hold gigabytes. This budget bounds the sum:

- pushes wait (``room``) while the queued bytes are over half the budget, so that a burst
  goes out at the pace the clients read it instead of piling up in server memory (the push
  transports stop reading, their brokers or pushers keep the rest);
- while a push waits, the clients whose backlog did not shrink for ``slow_reader_timeout``
  are cut off, biggest first (they read nothing; a reading client behind a burst drains),
  then, past twice that, the biggest holder whoever it is; over the whole budget at the end
  of a turn, the biggest holders over ``max_outgoing_buffer``;
- once the queued bytes fall back, freed memory is handed back to the system (``malloc_trim``
  on glibc: the allocator otherwise keeps the pages the backlogs used).

Counting stays off the fan-out's hot path: an output reports its transport's unsent bytes once
per flush (``change``); the totals are re-read from the transports only when over the budget.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import Callable
from typing import Protocol

logger = logging.getLogger(__name__)

WAIT_STEP = 0.005
"""Seconds between two looks at the queued bytes while a push waits for room."""
TURN_PUSHES = 1024
"""Pushes let through in one loop turn at most: their frames are counted only once flushed."""
TURN_SHARE = 8
"""A turn also ends once the bytes its pushes may leave queued (``queued``) pass this share of
the budget: a topic batches a turn's pushes (topic.py), so fewer, longer turns cost less."""
TRIM_CHECK = 0.5
"""Seconds between looks at a big backlog, to hand its memory back once it drained."""
TRIM_MARK = 8 << 20
"""A backlog that passed this many bytes has its memory handed back once it drained."""


class Holder(Protocol):
    """An output that holds unsent bytes (``Output``)."""

    def unsent(self) -> int:
        """Bytes its transport has not sent yet, read now (0: gone)."""
        ...

    def cut_off(self, why: str) -> None:
        """Drop the client; its transport's buffer is freed."""
        ...


def _malloc_trim() -> Callable[[], object] | None:
    """glibc's ``malloc_trim(0)``, or None where there is none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return lambda: trim(0)


class OutgoingBudget:
    """Bytes queued to all clients together, and what happens when they pass ``limit``."""

    def __init__(self, limit: int, client_limit: int, patience: float) -> None:
        self.limit = limit
        """``max_outgoing_total``; 0: no server-wide budget."""
        self.client_limit = client_limit
        """``max_outgoing_buffer``: a client over it is behind (the first to be cut off)."""
        self.patience = patience
        """``slow_reader_timeout``: how long a push waits before any holder may be cut off."""
        self.total = 0
        """Unsent bytes of every holder as last reported (stale high until ``recount``)."""
        self.peak = 0
        """Most bytes queued since memory was last handed back."""
        self.cut_off = 0
        """Clients cut off by this budget."""
        self._held: dict[Holder, int] = {}
        self._turn_pushes = 0
        """Pushes let through since the last flush (their frames are not counted yet)."""
        self._turn_bytes = 0
        """What this turn's broadcasts may leave queued, as ``queued`` estimated it."""
        self._trim = _malloc_trim()
        self._trim_timer: asyncio.TimerHandle | None = None

    @classmethod
    def unlimited(cls) -> OutgoingBudget:
        """No server-wide budget (tests that build connection services by hand)."""
        return cls(0, 0, 0.0)

    def change(self, holder: Holder, unsent: int) -> None:
        """``holder`` has ``unsent`` bytes queued now (0 when it is gone)."""
        before = self._held.pop(holder, 0)
        if unsent:
            self._held[holder] = unsent
        self.total += unsent - before
        if self.total > self.peak:
            self.peak = self.total
            if self.peak > TRIM_MARK and self._trim_timer is None:
                self._watch()

    def recount(self) -> int:
        """Read every holder's unsent bytes again (they drain between flushes)."""
        for holder in list(self._held):
            self.change(holder, holder.unsent())
        return self.total

    def over(self, mark: int) -> bool:
        """Whether the queued bytes pass ``mark``, recounted before saying yes."""
        return bool(self.limit) and self.total > mark and self.recount() > mark

    def queued(self, frame_bytes: int) -> None:
        """A broadcast of ``frame_bytes`` per subscriber waits for the end of the turn. Clients
        that read take it at once; those already holding bytes (and, to be safe, one more)
        may keep it queued, so it counts that many times toward ending the turn early."""
        self._turn_bytes += frame_bytes * (len(self._held) + 1)

    def settle(self) -> None:
        """End of a loop turn's flush: over ``limit``, cut off the biggest holders behind."""
        self._turn_pushes = self._turn_bytes = 0
        if self.total > self.limit and self.limit:
            self.enforce()

    def enforce(self) -> None:
        """Over ``limit``: cut off the biggest holders while they are behind (over
        ``client_limit``), until the queued bytes fit again."""
        while self.over(self.limit):
            holder, unsent = max(self._held.items(), key=lambda item: item[1])
            if unsent <= self.client_limit:
                return
            self._cut(holder, f"held the most while the queued bytes were over {self.limit}")

    async def room(self) -> None:
        """Return once the queued bytes are under half the budget (a push may go out).

        While a push waits, clients that read drain their backlog; those whose backlog did
        not shrink in ``patience`` seconds do not read at all, and are cut off. Past twice
        ``patience`` the biggest holder is cut off, whoever it is, so that no client can stop
        the pushes for good.
        """
        if not self.limit:
            return
        self._turn_pushes += 1
        if self._turn_pushes > TURN_PUSHES or self._turn_bytes > self.limit // TURN_SHARE:
            await asyncio.sleep(0)  # let the flush run: count what went out
            self._turn_pushes = self._turn_bytes = 0
        mark = self.limit // 2
        if not self.over(mark):
            return
        loop = asyncio.get_running_loop()
        started = looked = loop.time()
        before = dict(self._held)
        while self.over(mark):
            self.enforce()
            now = loop.time()
            if now - looked >= self.patience:
                self._cut_stalled(before)
                before, looked = dict(self._held), now
            if now - started >= 2 * self.patience and self.total > mark:
                self._cut(max(self._held, key=self._held.__getitem__), "held the most too long")
                started = now
            await asyncio.sleep(WAIT_STEP)

    def _cut_stalled(self, before: dict[Holder, int]) -> None:
        """Cut off every holder whose backlog did not shrink since ``before``, biggest
        first: it read nothing while pushes waited (cutting only enough of them to fit let
        the others fill up again and stop the pushes once more)."""
        held = self._held
        stalled = [h for h, unsent in held.items() if unsent >= before.get(h, unsent + 1)]
        for holder in sorted(stalled, key=held.__getitem__, reverse=True):
            self._cut(holder, f"read nothing for {self.patience} s while pushes waited")

    def _cut(self, holder: Holder, why: str) -> None:
        self.cut_off += 1
        holder.cut_off(why)
        self.change(holder, 0)

    def _watch(self) -> None:
        self._trim_timer = asyncio.get_running_loop().call_later(TRIM_CHECK, self._give_back)

    def _give_back(self) -> None:
        """Hand the pages a big backlog used back to the system once it drained (to an
        eighth of its peak): glibc keeps freed pages of its heap otherwise."""
        self._trim_timer = None
        if self.recount() > self.peak // 8:
            self._watch()
            return
        peak, self.peak = self.peak, self.total
        if self._trim is not None:
            self._trim()
        logger.info("outgoing backlog of %d bytes drained: memory handed back", peak)
