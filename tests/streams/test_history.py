"""Channel history on its own: positions, size and ttl limits, what a recovery may claim."""

from __future__ import annotations

import asyncio

import pytest

from gos_web_socket.app.exceptions import ProtocolError, RouteDefinitionError
from gos_web_socket.app.history import Backfill, ChannelHistory, HistoryStore, ReadBack
from gos_web_socket.app.position import LocalLog, Position, Publication
from gos_web_socket.app.router import load_routes_from_mapping


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_size_limit_makes_an_older_position_incomplete() -> None:
    """Past size, the oldest go; a client from before them is told incomplete."""
    history = ChannelHistory("c", size=3, ttl=60, since=Position("e", -1))
    for offset in range(5):
        history.record(Position("e", offset), offset)
    assert [p.payload for p in history] == [2, 3, 4]
    assert history.since(Position("e", 1)).recovered is True
    old = history.since(Position("e", 0))
    assert old.recovered is False and [p.payload for p in old.publications] == [2, 3, 4]


def test_ttl_drops_publications_and_completeness_with_them() -> None:
    """After ttl seconds a publication is gone, and so is a complete recovery from before it."""
    clock = Clock()
    history = ChannelHistory("c", size=100, ttl=10, since=Position("e", -1), clock=clock)
    history.record(Position("e", 0), "a")
    clock.now = 5
    history.record(Position("e", 7), "b")
    clock.now = 12
    assert [p.payload for p in history.since(Position("e", -1)).publications] == ["b"]
    assert history.since(Position("e", -1)).recovered is False
    assert history.since(Position("e", 0)).recovered is True


def test_a_new_epoch_starts_afresh() -> None:
    """A publication of another epoch clears the history; the old epoch is not recovered."""
    history = ChannelHistory("c", size=10, ttl=60, since=Position("old", -1))
    history.record(Position("old", 0), "a")
    history.record(Position("new", 0), "b")
    assert history.since(Position("old", 0)).recovered is False
    assert history.since(Position("new", -1)).recovered is True


async def test_the_store_is_complete_from_the_first_push_it_saw() -> None:
    """A channel first seen after pushes on others is complete from the log's start."""
    store = HistoryStore(lambda channel: (10, 60))
    store.note(Position("e", 40))
    store.note(Position("e", 41))
    history = store.channel("late")
    assert history is not None and history.complete_after == 39
    assert (await store.recover("late", Position("e", 39))).recovered is True
    assert (await store.recover("late", Position("e", 38))).recovered is False


async def test_sweeping_an_emptied_channel_keeps_its_losses() -> None:
    """A channel forgotten after its ttl comes back complete only after what it dropped."""
    clock = Clock()
    store = HistoryStore(lambda channel: (10, 1), log=LocalLog())
    history = store.channel("c")
    assert history is not None
    history._clock = clock  # type: ignore[misc]  # the ttl on a clock the test moves
    epoch = history.epoch
    assert epoch is not None
    history.record(Position(epoch, 5), "a")
    clock.now = 5
    store.sweep()
    assert len(store) == 0
    assert (await store.recover("c", Position(epoch, 4))).recovered is False
    assert (await store.recover("c", Position(epoch, 5))).recovered is True


def test_local_logs_differ_per_process_start() -> None:
    """Two local logs (two process starts) have different epochs, offsets from 0."""
    one, two = LocalLog(), LocalLog()
    assert one.epoch != two.epoch
    assert one.next() == Position(one.epoch, 0) and one.next().offset == 1


def test_a_client_position_must_be_well_formed() -> None:
    """A position is {epoch: str, offset: int}; anything else is a protocol error."""
    assert Position.parse({"epoch": "e", "offset": 3}, "p") == Position("e", 3)
    for bad in ("x", {"epoch": 1, "offset": 1}, {"epoch": "e", "offset": "1"}, {"epoch": "e"}):
        with pytest.raises(ProtocolError):
            Position.parse(bad, "p")


def test_a_route_history_needs_a_size_and_ttl_in_range() -> None:
    """routing.yaml history: {size, ttl}; a bad value names the route, the key and the rule."""
    routes = load_routes_from_mapping(
        {"r": {"pattern": "a/{x}", "callback": "t", "history": {"size": 5, "ttl": 2}}}
    )
    history = routes.get("r").history  # type: ignore[union-attr]
    assert history is not None and (history.size, history.ttl) == (5, 2.0)
    with pytest.raises(RouteDefinitionError, match=r'route "r".*history.size: 0: expected'):
        load_routes_from_mapping(
            {"r": {"pattern": "a/{x}", "callback": "t", "history": {"size": 0}}}
        )
    with pytest.raises(RouteDefinitionError, match="history: 5: expected a mapping"):
        load_routes_from_mapping({"r": {"pattern": "a/{x}", "callback": "t", "history": 5}})


async def test_a_recovery_never_moves_a_client_back() -> None:
    """A node whose history is behind the client (still reading its fill) answers the client's
    own position, not an older one."""
    store = HistoryStore(lambda channel: (10, 60))
    store.note(Position("e", 5))
    history = store.channel("c")
    assert history is not None
    history.record(Position("e", 6), "a")
    recovery = await store.recover("c", Position("e", 40))
    assert recovery.recovered is True and recovery.publications == []
    assert recovery.position == Position("e", 40)


class Log:
    """A log of offsets 0..99 on epoch "e", where channel "c" has the even offsets; each read
    is recorded and, until ``open`` is set, waits (so that recoveries can ask meanwhile)."""

    def __init__(self, fail: bool = False) -> None:
        self.reads: list[tuple[int, int, frozenset[str]]] = []
        self.fail = fail
        self.open = asyncio.Event()
        self.open.set()
        self.reading = asyncio.Event()

    async def read(self, first: int, last: int, channels: frozenset[str]) -> ReadBack:
        self.reads.append((first, last, channels))
        self.reading.set()
        await self.open.wait()
        if self.fail:
            raise ConnectionError("broker went away")
        kept = {c: [] for c in channels}
        for offset in range(first, min(last, 99) + 1):
            if offset % 2 == 0 and "c" in kept:
                kept["c"].append(Publication(Position("e", offset), offset, 0.0))
        return ReadBack("e", kept, first, min(last, 99))


async def test_recoveries_asked_during_a_read_share_the_next_one() -> None:
    """Three recoveries: the first reads alone, the two asked meanwhile share one more read;
    each gets its own range of its channel, complete."""
    log = Log()
    log.open.clear()
    backfill = Backfill(log.read, limit=100)
    first = asyncio.create_task(backfill.fetch("c", "e", 10, 20))
    await log.reading.wait()  # the first read runs
    others = [
        asyncio.create_task(backfill.fetch("c", "e", 0, 5)),
        asyncio.create_task(backfill.fetch("d", "e", 30, 40)),
    ]
    asyncio.get_running_loop().call_soon(log.open.set)  # after both asked (tasks run first)
    one, two, three = await asyncio.gather(first, *others)
    assert [p.payload for p in one[0]] == [10, 12, 14, 16, 18, 20] and one[1] is True
    assert [p.payload for p in two[0]] == [0, 2, 4] and two[1] is True
    assert three == ([], True)
    assert log.reads == [(10, 20, frozenset("c")), (0, 40, frozenset("cd"))]
    assert backfill.reads == 2


async def test_a_read_back_is_bounded_and_honest() -> None:
    """Past the limit nothing is read; past the log's end, a failed read or another epoch the
    recovery is incomplete."""
    log = Log()
    backfill = Backfill(log.read, limit=50)
    assert await backfill.fetch("c", "e", 0, 60) == ([], False)
    assert log.reads == []
    short = await backfill.fetch("c", "e", 90, 120)
    assert [p.payload for p in short[0]] == [90, 92, 94, 96, 98] and short[1] is False
    assert await backfill.fetch("c", "other", 0, 10) == ([], False)
    assert await Backfill(Log(fail=True).read, limit=50).fetch("c", "e", 0, 10) == ([], False)


async def test_a_read_that_got_nothing_is_tried_again() -> None:
    """A read that fails, then one that gets nothing, then one that works: the recovery is
    complete, after three reads; a log that never answers is incomplete after three."""
    outcomes: list[str] = ["fail", "nothing", "read"]

    async def flaky(first: int, last: int, channels: frozenset[str]) -> ReadBack:
        outcome = outcomes.pop(0)
        if outcome == "fail":
            raise ConnectionError("channel closed")
        if outcome == "nothing":
            return ReadBack(None, {}, None, None)
        return await Log().read(first, last, channels)

    backfill = Backfill(flaky, limit=100)
    got, whole = await backfill.fetch("c", "e", 10, 14)
    assert [p.payload for p in got] == [10, 12, 14] and whole is True
    assert backfill.reads == 3 and outcomes == []
    silent = Backfill(Log(fail=True).read, limit=100)
    assert await silent.fetch("c", "e", 10, 14) == ([], False)
    assert silent.reads == Backfill.ATTEMPTS


async def test_a_store_joins_the_log_and_its_history() -> None:
    """A history complete after offset 49 answers a client at 9 with the log's part, then its
    own, complete; a store without a backfill says incomplete."""
    store = HistoryStore(lambda channel: (1000, 60), backfill=Backfill(Log().read, limit=100))
    store.note(Position("e", 50))
    history = store.channel("c")
    assert history is not None and history.complete_after == 49
    for offset in (50, 52):
        history.record(Position("e", offset), offset)
    recovery = await store.recover("c", Position("e", 9))
    assert [p.payload for p in recovery.publications] == list(range(10, 53, 2))
    assert recovery.recovered is True and recovery.position == Position("e", 52)
    alone = HistoryStore(lambda channel: (1000, 60))
    alone.note(Position("e", 50))
    assert (await alone.recover("c", Position("e", 9))).recovered is False


async def test_more_than_the_route_keeps_is_incomplete() -> None:
    """A read back may not give more than the route's size: 21 missed on a channel that keeps
    10 gives the last 10, incomplete, as a node that had them all in memory would."""
    store = HistoryStore(lambda channel: (10, 60), backfill=Backfill(Log().read, limit=100))
    store.note(Position("e", 50))
    recovery = await store.recover("c", Position("e", 9))
    assert [p.payload for p in recovery.publications] == list(range(30, 50, 2))
    assert recovery.recovered is False
