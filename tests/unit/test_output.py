"""The output path (batching, back-pressure, cut-off) over a fake transport, without a socket."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from gos_web_socket.app.server.memory import OutgoingBudget
from gos_web_socket.app.server.output import BACKLOG_FACTOR, Output
from gos_web_socket.app.stats import ServerStats

OPEN, CLOSED = 3, 4


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.unsent = 0

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def get_write_buffer_size(self) -> int:
        return self.unsent


@dataclass
class FakeLink:
    session_id: str = "1"
    state: int = OPEN
    transport: Any = field(default_factory=FakeTransport)
    aborted: list[str] = field(default_factory=list)
    flushes: int = 0
    cut: asyncio.Event = field(default_factory=asyncio.Event)

    def abort(self, reason: str) -> None:
        self.aborted.append(reason)
        self.state = CLOSED
        self.cut.set()


@dataclass
class FakeServices:
    stats: ServerStats = field(default_factory=ServerStats)
    scheduled: list[Any] = field(default_factory=list)
    max_outgoing_buffer: int = 100
    slow_reader_timeout: float = 0.05
    outgoing: OutgoingBudget = field(default_factory=OutgoingBudget.unlimited)

    @property
    def flusher(self) -> Any:
        return self

    def schedule(self, link: Any) -> None:
        self.scheduled.append(link)

    batching = None

    def before_write(self, session_id: str) -> None:
        pass


def output() -> tuple[Output, FakeLink, FakeServices]:
    link, services = FakeLink(), FakeServices()
    return Output(link, services, OPEN), link, services


def test_frames_of_one_turn_leave_in_one_write_in_order() -> None:
    """Three frames queue one flush and leave joined in one write; frames_out counts three."""
    out, link, services = output()
    assert out.write(b"a") and out.write(b"b") and out.write(b"c")
    assert services.scheduled == [link]
    out.flush()
    assert link.transport.writes == [b"abc"]
    assert services.stats.frames_out == 3


def test_a_single_frame_is_written_as_it_is() -> None:
    """One frame is written without a join and the next turn schedules a flush again."""
    out, link, services = output()
    out.write(b"only")
    out.flush()
    out.write(b"next")
    assert link.transport.writes == [b"only"]
    assert len(services.scheduled) == 2


def test_nothing_is_queued_or_written_when_not_open() -> None:
    """write is False on a closed link or without a transport; queued frames of a link
    closed before the flush are dropped."""
    out, link, services = output()
    out.write(b"a")
    link.state = CLOSED
    assert not out.write(b"b")
    out.flush()
    assert link.transport.writes == []
    link.state, link.transport = OPEN, None
    assert not out.write(b"c")


async def test_a_backlog_that_does_not_drain_is_cut_off() -> None:
    """Paused and not resumed within slow_reader_timeout: aborted once, counted."""
    out, link, services = output()
    link.transport.unsent = 150
    out.pause()
    await asyncio.sleep(0.1)
    assert link.aborted == ["client did not read (outgoing buffer over limit)"]
    assert services.stats.cut_off == 1


async def test_a_backlog_that_drains_is_kept() -> None:
    """Paused then resumed before the timeout: not cut off."""
    out, link, services = output()
    out.pause()
    out.resume()
    await asyncio.sleep(0.1)
    assert link.aborted == [] and services.stats.cut_off == 0


async def test_a_backlog_past_the_factor_is_cut_off_at_once() -> None:
    """Unsent bytes over BACKLOG_FACTOR x max_outgoing_buffer cut the client off on the next
    flush while paused, without waiting for the timeout."""
    out, link, services = output()
    out.pause()
    link.transport.unsent = services.max_outgoing_buffer * BACKLOG_FACTOR + 1
    out.write(b"more")
    out.flush()
    assert link.aborted and services.stats.cut_off == 1
    out.stop()


def test_cut_off_of_a_closed_link_does_nothing() -> None:
    """A link that is no longer open is not aborted nor counted."""
    out, link, services = output()
    link.state = CLOSED
    out.cut_off("did not drain")
    assert link.aborted == [] and services.stats.cut_off == 0


async def test_a_paused_client_that_reads_a_buffer_per_timeout_is_kept() -> None:
    """Over the limit past slow_reader_timeout but having read max_outgoing_buffer bytes
    meanwhile (a reader behind a burst): it gets another timeout; reading nothing then cuts."""
    out, link, services = output()
    services.slow_reader_timeout = timeout = 0.4  # long enough to look between two deadlines
    loop = asyncio.get_running_loop()
    start = loop.time()
    out.pause()
    link.transport.unsent = 150
    out.write(b"x" * 300)
    out.flush()  # 300 written, 150 still unsent: it read 150 > max_outgoing_buffer (100)
    await asyncio.sleep(1.5 * timeout)  # past the first deadline, before the second
    assert link.aborted == []
    await asyncio.wait_for(link.cut.wait(), 10 * timeout)  # the second deadline cuts it off
    assert link.aborted == ["client did not read (outgoing buffer over limit)"]
    assert loop.time() - start >= 2 * timeout  # not before the second deadline
