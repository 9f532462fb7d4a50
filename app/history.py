"""Channel history: the last pushes of a channel, each with a position, and recovery from one.

A position is ``(epoch, offset)``. Offsets grow with every push a log takes; the epoch names
the log, and changes whenever offsets could repeat:

- in ``queue_mode: stream`` the log is the RabbitMQ stream: the offset is the stream offset
  and the epoch identifies the stream (app/transports/amqp/stream.py), the same on every node;
- otherwise (ZeroMQ, memory, AMQP queues) the log is this process: a counter, and an epoch
  drawn at random when the process starts.

The push handler says which position the push it is delivering has (``Push.position``,
app/push.py); a topic whose route keeps history records what it broadcasts as part of that
push under that position.
A client that comes back with the last position it saw gets everything after it when the
history still holds it (``recovered``), or is told that it cannot (``recovered: false``: the
epoch changed or the history was cut), so that the application reloads its state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gos_web_socket.app.exceptions import ResourceNotFound
from gos_web_socket.app.position import LOCAL, LocalLog, Position, Publication

if TYPE_CHECKING:
    from gos_web_socket.app.router import Router
    from gos_web_socket.settings import AmqpSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Recovery:
    """What a client coming back from ``since`` gets: what it missed, and whether that is all.

    ``position`` is where the client stands afterwards (the last replayed publication, or the
    channel's current position when nothing was missed); ``recovered`` is False when some
    publications after ``since`` are no longer known (another epoch, history cut).
    """

    publications: list[Publication]
    recovered: bool
    position: Position | None

    def as_dict(self, with_publications: bool = True) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "recovered": self.recovered,
            "position": self.position.as_dict() if self.position else None,
        }
        if with_publications:
            answer["publications"] = [
                {**p.position.as_dict(), "data": p.payload} for p in self.publications
            ]
        return answer


class ChannelHistory:
    """The last ``size`` publications of one channel, each kept ``ttl`` seconds at most.

    ``complete_after`` is the offset after which nothing was dropped: a recovery from an offset
    at or above it is complete. A new history (a channel first seen, a node just started) is
    complete only from its first publication on, unless a fill says more.
    """

    __slots__ = ("channel", "size", "ttl", "epoch", "complete_after", "_items", "_clock")

    def __init__(
        self,
        channel: str,
        size: int,
        ttl: float,
        since: Position | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.channel = channel
        self.size = size
        self.ttl = ttl
        self.epoch: str | None = since.epoch if since else None
        self.complete_after: int | None = since.offset if since else None
        self._items: deque[Publication] = deque()
        self._clock = clock

    def record(self, position: Position, payload: Any) -> None:
        """Keep one publication; another epoch starts the history afresh."""
        if position.epoch != self.epoch:
            self.epoch = position.epoch
            self._items.clear()
            self.complete_after = position.offset - 1
        elif self._items and position.offset <= self._items[-1].position.offset:
            return  # already kept (a fill that overlaps live pushes)
        self._items.append(Publication(position, payload, self._clock()))
        self._trim()

    def _trim(self) -> None:
        items = self._items
        cutoff = self._clock() - self.ttl
        while items and (len(items) > self.size or items[0].at < cutoff):
            self.complete_after = items.popleft().position.offset

    @property
    def position(self) -> Position | None:
        """The last publication's position (None: nothing kept yet)."""
        self._trim()
        return self._items[-1].position if self._items else None

    def since(self, since: Position) -> Recovery:
        """Every publication after ``since`` and whether that is all of them."""
        self._trim()
        if self.epoch is None:
            return Recovery([], False, None)
        if since.epoch != self.epoch:
            return Recovery([], False, self.position)
        missed = [p for p in self._items if p.position.offset > since.offset]
        complete = self.complete_after is not None and since.offset >= self.complete_after
        last = missed[-1].position if missed else (self.position or since)
        return Recovery(missed, complete, last)

    def current(self, log: Position | None) -> Position | None:
        """Where a client that saw everything stands: the last publication, or the log's."""
        mine = self.position
        if log is None or log.epoch != self.epoch:
            return mine
        return log if mine is None or log.offset > mine.offset else mine

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Publication]:
        return iter(list(self._items))


@dataclass(frozen=True, slots=True)
class ReadBack:
    """What one read of the log gave: the publications of the channels asked for, and the
    offsets ``first``..``last`` it covered without a hole (None: it got nothing)."""

    epoch: str | None
    publications: dict[str, list[Publication]]
    first: int | None
    last: int | None

    def part(
        self, channel: str, epoch: str, first: int, last: int
    ) -> tuple[list[Publication], bool]:
        """The channel's publications at ``first``..``last`` of ``epoch``, and whether the read
        held all of them."""
        if epoch != self.epoch or self.first is None or self.last is None:
            return [], False
        mine = [p for p in self.publications.get(channel, ()) if first <= p.position.offset <= last]
        return mine, self.first <= first and self.last >= last


ReadLog = Callable[[int, int, frozenset[str]], Awaitable[ReadBack]]
"""Reads the log back from one offset to another for some channels (the server's push handler
of the stream, ``LogReader.read_back``)."""


@dataclass(slots=True)
class _Wanted:
    channel: str
    epoch: str
    first: int
    last: int
    answer: asyncio.Future[tuple[list[Publication], bool]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Backfill:
    """Serves the part of a recovery that is older than a channel's history, from the log.

    A node that started after a client's position (or whose history was cut) reads the stream
    back for it. One read covers at most ``limit`` offsets; recoveries asked for while a read
    runs wait for the next one, which serves every one of them that fits in one range, so a
    mass reconnect reads the log a few times, not once per client.
    """

    ATTEMPTS = 3
    """Reads of one range before its recoveries are reported incomplete: a read that got
    nothing (the broker busy or briefly away) is tried again ``RETRY_AFTER`` s later, so a
    hiccup does not make every client of a mass reconnect reload."""
    RETRY_AFTER = 0.5

    def __init__(self, read: ReadLog, limit: int) -> None:
        self._read = read
        self.limit = limit
        self._waiting: list[_Wanted] = []
        self._task: asyncio.Task[None] | None = None
        self.reads = 0
        """Reads of the log made so far (metrics)."""

    async def fetch(
        self, channel: str, epoch: str, first: int, last: int
    ) -> tuple[list[Publication], bool]:
        """The channel's publications at offsets ``first``..``last`` of ``epoch`` and whether
        the log still held all of them (False also past ``limit``, or when the read failed)."""
        if last - first + 1 > self.limit:
            return [], False
        wanted = _Wanted(channel, epoch, first, last)
        self._waiting.append(wanted)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._serve())
        return await asyncio.shield(wanted.answer)

    def _take(self) -> list[_Wanted]:
        """The oldest waiting recovery and every other that fits in one read with it."""
        first, last = self._waiting[0].first, self._waiting[0].last
        batch, rest = [], []
        for wanted in self._waiting:
            low, high = min(first, wanted.first), max(last, wanted.last)
            if high - low + 1 <= self.limit:
                batch.append(wanted)
                first, last = low, high
            else:
                rest.append(wanted)
        self._waiting = rest
        return batch

    async def _serve(self) -> None:
        while self._waiting:
            batch = self._take()
            first, last = min(w.first for w in batch), max(w.last for w in batch)
            channels = frozenset(w.channel for w in batch)
            read = await self._read_range(first, last, channels)
            for wanted in batch:
                if not wanted.answer.done():
                    part = read.part(wanted.channel, wanted.epoch, wanted.first, wanted.last)
                    wanted.answer.set_result(part)

    async def _read_range(self, first: int, last: int, channels: frozenset[str]) -> ReadBack:
        """One range read, tried again while it fails or gets nothing (``ATTEMPTS``). A read
        that got part of the range (the log no longer holds the rest) is not tried again."""
        attempt = 1
        while True:
            self.reads += 1
            try:
                read = await self._read(first, last, channels)
            except Exception as exc:
                logger.warning("reading the log back (%d..%d) failed: %r", first, last, exc)
                read = ReadBack(None, {}, None, None)
            if read.first is not None or attempt >= self.ATTEMPTS:
                return read
            attempt += 1
            logger.warning(
                "reading the log back (%d..%d) got nothing; attempt %d of %d in %s s",
                first,
                last,
                attempt,
                self.ATTEMPTS,
                self.RETRY_AFTER,
            )
            await asyncio.sleep(self.RETRY_AFTER)


class HistoryStore:
    """Every channel's history, created when a route that keeps one first needs it.

    ``limits(channel)`` answers the route's ``(size, ttl)`` or None; the store asks once per
    channel it meets. The store also follows the log (``note``, every push delivered): from
    the first push of an epoch on it has seen every later one, in order, so a history created
    afterwards is complete from that point on (``begin``) even for a channel it never had.
    """

    def __init__(
        self,
        limits: Callable[[str], tuple[int, float] | None],
        log: LocalLog | None = None,
        origin: Callable[[], Position | None] | None = None,
        backfill: Backfill | None = None,
    ) -> None:
        self._limits = limits
        self._origin = origin
        """Where a broker log's reader started (``LogReceiver.opened_at``), asked until known."""
        self.backfill = backfill
        """Reads what a history lacks back from the broker log (stream mode), else None."""
        self._channels: dict[str, ChannelHistory] = {}
        self._without: set[str] = set()
        self.begin: Position | None = log.current() if log else None
        """The position after which this node saw every push of the epoch (``log``: this
        process's log, when no broker log numbers the pushes)."""
        self.last: Position | None = self.begin
        """The last push this node delivered."""
        self.replayed = 0
        """Publications sent to clients by recoveries."""
        self.recoveries: dict[bool, int] = {True: 0, False: 0}
        """Recoveries by outcome (complete: True)."""

    @classmethod
    def from_settings(
        cls,
        router: Router,
        amqp: AmqpSettings,
        origin: Callable[[], Position | None],
        read_back: ReadLog,
    ) -> HistoryStore:
        """Channel histories: positioned by the broker log in stream mode (which a recovery
        older than a history reads back, up to ``recover_max`` offsets), else by this
        process's log. ``origin`` and ``read_back``: the server's ``LogReader``."""
        stream = amqp.enabled and amqp.queue_mode == "stream"
        recover_max = amqp.stream.recover_max
        return cls(
            route_limits(router),
            log=None if stream else LOCAL,
            origin=origin,
            backfill=Backfill(read_back, recover_max) if stream and recover_max else None,
        )

    def note(self, position: Position) -> None:
        """A push at ``position`` is being delivered (logs deliver in order, gap-free)."""
        begin = self._begin()
        if begin is None or position.epoch != begin.epoch:
            self.begin = Position(position.epoch, position.offset - 1)
        self.last = position

    def _begin(self) -> Position | None:
        if self.begin is None and self._origin is not None:
            self.begin = self.last = self._origin()
        return self.begin

    def channel(self, channel: str) -> ChannelHistory | None:
        """The channel's history; None when its route keeps none."""
        history = self._channels.get(channel)
        if history is not None or channel in self._without:
            return history
        limits = self._limits(channel)
        if limits is None:
            if len(self._without) > 100_000:
                self._without.clear()
            self._without.add(channel)
            return None
        size, ttl = limits
        history = self._channels[channel] = ChannelHistory(channel, size, ttl, self._begin())
        return history

    def record(
        self, history: ChannelHistory, position: Position | None, payload: Any
    ) -> Position | None:
        """Record a broadcast made as part of a push at ``position``; the position, or None
        (a push without one: nothing is recorded)."""
        if position is None:
            return None
        history.record(position, payload)
        return position

    def gap(self, channel: str, since: Position | None) -> tuple[int, int] | None:
        """The offsets after ``since`` that the channel's history lacks and the log may still
        hold (``backfill``); None when the history answers alone."""
        history = self.channel(channel)
        if self.backfill is None or since is None or history is None:
            return None
        after = history.complete_after
        if history.epoch != since.epoch or after is None or since.offset >= after:
            return None
        return since.offset + 1, after

    async def recover(self, channel: str, since: Position | None) -> Recovery:
        """What a client of ``channel`` missed after ``since`` (None: just where it stands).

        Without a ``gap`` this runs in one step (nothing is awaited). With one, the part the
        history lacks is read back from the log first and the history's part taken after it.
        """
        gap = self.gap(channel, since)
        if gap is None:
            recovery = self._from_history(channel, since)
        else:
            assert since is not None and self.backfill is not None
            older, whole = await self.backfill.fetch(channel, since.epoch, *gap)
            recovery = self._from_history(channel, Position(since.epoch, gap[1]))
            recovery = self._join(channel, older, whole, recovery)
        if since is not None and channel in self._channels:
            self.recoveries[recovery.recovered] += 1
            self.replayed += len(recovery.publications)
        return recovery

    def _from_history(self, channel: str, since: Position | None) -> Recovery:
        history = self.channel(channel)
        if history is None:
            return Recovery([], False, None)
        if since is None:
            return Recovery([], True, history.current(self.last))
        recovery = history.since(since)
        if not recovery.publications:  # where it stands now: the channel's or the log's
            now = history.current(self.last)
            if recovery.recovered and (now is None or now.offset < since.offset):
                now = since  # a node still reading its fill is behind the client: never back
            recovery = Recovery([], recovery.recovered, now)
        return recovery

    def _join(
        self, channel: str, older: list[Publication], whole: bool, newer: Recovery
    ) -> Recovery:
        """What the log gave, then what the history has; at most the route's ``size`` of them
        (more is incomplete, as a history of that size would have said)."""
        publications = older + newer.publications
        recovered = whole and newer.recovered
        history = self.channel(channel)
        size = history.size if history is not None else len(publications)
        if len(publications) > size:
            publications, recovered = publications[-size:], False
        last = publications[-1].position if publications else None
        return Recovery(publications, recovered, newer.position or last)

    def sweep(self) -> None:
        """Forget channels whose history emptied (ttl). What they dropped stays dropped: a
        history made for such a channel later is complete only after the last of it."""
        for name in [n for n, h in self._channels.items() if h.position is None]:
            history = self._channels.pop(name)
            begin, dropped = self.begin, history.complete_after
            if begin is not None and dropped is not None and history.epoch == begin.epoch:
                self.begin = Position(begin.epoch, max(begin.offset, dropped))

    def __len__(self) -> int:
        return len(self._channels)


def route_limits(router: Router) -> Callable[[str], tuple[int, float] | None]:
    """``HistoryStore`` limits from the routes' ``history: {size, ttl}``."""

    def limits(channel: str) -> tuple[int, float] | None:
        try:
            history = router.match(channel).route.history
        except ResourceNotFound:
            return None
        return None if history is None else (history.size, history.ttl)

    return limits
