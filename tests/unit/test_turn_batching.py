"""Topic-level batching: a topic keeps a loop turn's EVENT frames and each subscriber gets their
join once at the turn's end, in the order its frames were queued (topic.py, live.py, output.py).

Clients here are real ``Output`` objects over a transport that records writes, so a test sees
exactly the bytes and the writes each client would get; a turn ends at ``flusher.flushed()``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from gos_web_socket.app.server.live import FlushScheduler
from gos_web_socket.app.server.memory import OutgoingBudget
from gos_web_socket.app.server.output import BACKLOG_FACTOR, Output, write_paced
from gos_web_socket.app.server.session import WireFormat
from gos_web_socket.app.server.topic import Topic
from gos_web_socket.app.stats import ServerStats

OPEN, CLOSED = 3, 4
LIMIT = 100
"""``max_outgoing_buffer`` of every client here."""


class Plain(WireFormat):
    """A frame is ``topic=payload;``: easy to read back in order."""

    name = "plain"

    def event_frame(
        self, topic: str, subscription: int, publication: int, payload: Any, position: Any = None
    ) -> bytes:
        return f"{topic}={payload};".encode()


WIRE = Plain()


class Transport:
    """Records each write; ``stuck`` makes it hold everything, as a client that reads nothing."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.writes: list[bytes] = []
        self.stuck = False
        self.unsent = 0

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        if self.stuck:
            self.unsent += len(data)
            if self.unsent > LIMIT:
                self.client.output.pause()  # what asyncio does over the high-water mark

    def get_write_buffer_size(self) -> int:
        return self.unsent


class Client:
    """A subscriber with a real output path: what ``Topic`` and the flusher need of it."""

    wire_format = WIRE

    def __init__(self, name: str, services: Services) -> None:
        self.session_id = name
        self.state = OPEN
        self.transport: Transport | None = Transport(self)
        self.output = Output(self, services, OPEN)
        self.write_frame = self.output.write
        self.write_now = self.output.write_now
        self.writes = self.transport.writes

    def flush(self) -> None:
        self.output.flush()

    def abort(self, reason: str) -> None:
        self.state = CLOSED

    def send_event(self, topic: str, payload: Any) -> bool:
        return self.write_frame(f"{topic}!{payload};".encode())

    def received(self) -> bytes:
        return b"".join(self.writes)


class Services:
    """What an output needs of its server, with a real flusher."""

    def __init__(self) -> None:
        self.stats = ServerStats()
        self.outgoing = OutgoingBudget.unlimited()
        self.flusher = FlushScheduler(self.outgoing, self.stats)
        self.max_outgoing_buffer = LIMIT
        self.slow_reader_timeout = 60.0


def rig(*names: str) -> tuple[Services, list[Client]]:
    services = Services()
    return services, [Client(name, services) for name in names]


def topic(services: Services, name: str, *members: Client) -> Topic:
    channel = Topic(name, turns=services.flusher)
    for member in members:
        channel.add(member)
    return channel


async def test_a_burst_reaches_each_subscriber_in_one_write_in_order() -> None:
    """Three pushes in one turn: each subscriber gets one write with the three frames, in order."""
    services, clients = rig("x", "y", "z")
    news = topic(services, "news", *clients)
    assert [news.broadcast(n) for n in (1, 2, 3)] == [3, 3, 3]
    assert all(client.writes == [] for client in clients)  # nothing before the turn ends
    await services.flusher.flushed()
    assert all(client.writes == [b"news=1;news=2;news=3;"] for client in clients)
    assert services.stats.frames_out == 9


async def test_two_topics_and_a_direct_send_in_one_turn_keep_each_clients_order() -> None:
    """Broadcasts to two topics and direct sends interleaved in one turn arrive as queued."""
    services, (x, y) = rig("x", "y")
    news, feed = topic(services, "news", x, y), topic(services, "feed", x)
    news.broadcast(1)
    x.send_event("me", "direct")
    feed.broadcast(2)
    news.broadcast(3)
    x.send_event("me", "last")
    await services.flusher.flushed()
    assert x.writes == [b"news=1;me!direct;feed=2;news=3;me!last;"]
    assert y.writes == [b"news=1;news=3;"]


async def test_frames_queued_before_the_batch_leave_with_it_in_one_write() -> None:
    """Direct sends queued before a burst go first, in the same write as the turn's batch."""
    services, (x, y) = rig("x", "y")
    news = topic(services, "news", x, y)
    x.send_event("me", "one")
    y.send_event("me", "one")
    y.send_event("me", "two")
    news.broadcast(1)
    news.broadcast(2)
    await services.flusher.flushed()
    assert x.writes == [b"me!one;news=1;news=2;"]
    assert y.writes == [b"me!one;me!two;news=1;news=2;"]
    assert services.stats.frames_out == 3 + 4


async def test_a_direct_send_to_a_non_subscriber_leaves_the_batch_open() -> None:
    """A frame for a client outside the topic does not hand the topic's frames over early."""
    services, (x, outsider) = rig("x", "outsider")
    news = topic(services, "news", x)
    news.broadcast(1)
    outsider.send_event("me", "hello")
    news.broadcast(2)
    assert services.flusher.batching is news
    await services.flusher.flushed()
    assert x.writes == [b"news=1;news=2;"] and outsider.writes == [b"me!hello;"]


async def test_an_exclusion_inside_a_batch_reaches_exactly_the_right_clients() -> None:
    """A broadcast excluding one client between two batched ones: order kept, exclusion kept."""
    services, (x, y) = rig("x", "y")
    news = topic(services, "news", x, y)
    news.broadcast(1)
    news.broadcast(2, exclude=["x"])
    news.broadcast(3, eligible=["x"])
    news.broadcast(4)
    await services.flusher.flushed()
    assert x.received() == b"news=1;news=3;news=4;"
    assert y.received() == b"news=1;news=2;news=4;"
    assert len(x.writes) == 1 and len(y.writes) == 1


async def test_a_subscriber_joining_or_leaving_mid_turn_gets_only_its_own_broadcasts() -> None:
    """Joined mid-turn: only what came after; left mid-turn: what came before."""
    services, (x, late, leaving) = rig("x", "late", "leaving")
    news = topic(services, "news", x, leaving)
    news.broadcast(1)
    news.add(late)
    news.remove(leaving)
    news.broadcast(2)
    await services.flusher.flushed()
    assert x.received() == b"news=1;news=2;"
    assert late.received() == b"news=2;"
    assert leaving.received() == b"news=1;"


async def test_a_held_subscriber_keeps_what_came_after_it_was_held() -> None:
    """Held mid-turn: the batch so far is written to it, later broadcasts are kept for it."""
    services, (x, y) = rig("x", "y")
    news = topic(services, "news", x, y)
    news.broadcast(1)
    news.hold(x)
    news.broadcast(2)
    kept = news.release(x)
    news.broadcast(3)
    await services.flusher.flushed()
    assert kept == [(None, b"news=2;")]
    assert x.received() == b"news=1;news=3;"
    assert y.received() == b"news=1;news=2;news=3;"


async def test_a_slow_reader_cut_off_mid_batch_leaves_the_others_whole() -> None:
    """A client that reads nothing is cut off while the batch is written; the rest get it all."""
    services, (x, slow, y) = rig("x", "slow", "y")
    assert slow.transport is not None
    slow.transport.stuck = True
    news = topic(services, "news", x, slow, y)
    for n in range(BACKLOG_FACTOR * LIMIT // 8):  # more than the cut-off holds
        news.broadcast(f"{n:03}")
    await services.flusher.flushed()
    assert slow.state == CLOSED and services.stats.cut_off == 1
    assert len(x.writes) == 1 and x.writes == y.writes
    news.broadcast("after")
    await services.flusher.flushed()
    assert x.writes[-1] == y.writes[-1] == b"news=after;" and len(slow.writes) == 1


async def test_acks_wait_until_the_batch_is_written() -> None:
    """``flushed`` returns only once the topic's frames of the turn were handed to clients."""
    services, (x,) = rig("x")
    news = topic(services, "news", x)
    news.broadcast(1)
    assert services.flusher.batching is news
    await services.flusher.flushed()
    assert services.flusher.batching is None and x.writes == [b"news=1;"]


async def test_a_close_writes_the_batch_before_the_close_frame() -> None:
    """A server-side close flushes what a topic holds for the client before its close frame."""
    services, (x, y) = rig("x", "y")
    news = topic(services, "news", x, y)
    news.broadcast(1)
    x.flush()  # what ``WampConnection.close`` does before it sends the close frame
    assert x.writes == [b"news=1;"] and y.writes == []
    await services.flusher.flushed()
    assert y.writes == [b"news=1;"] and x.writes == [b"news=1;"]


async def test_a_paced_write_waits_for_the_client_to_read_each_chunk() -> None:
    """A replay written with write_paced never holds much more than a buffer's worth unsent."""
    services, (x,) = rig("x")
    assert x.transport is not None
    x.transport.stuck = True
    frames = [bytes([65 + n % 26]) * 10 for n in range(100)]  # 1,000 bytes, 10 x the buffer
    task = asyncio.create_task(write_paced(x.output, frames, LIMIT))
    peak = turns = 0
    while not task.done() and turns < 10_000:
        await asyncio.sleep(0)  # one loop turn; then the client reads all it was sent
        turns += 1
        peak = max(peak, x.transport.unsent)
        if x.transport.unsent:
            x.transport.unsent = 0
            x.output.resume()  # what asyncio calls once the buffer drained
    assert task.done() and task.result() is True
    assert x.received() == b"".join(frames) and x.state == OPEN
    assert 0 < peak <= LIMIT + 10
