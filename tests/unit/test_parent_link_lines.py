"""The link between the parent and a worker, read at either end: one bad line costs only itself."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import pytest
import uvloop

from gos_web_socket.app.worker_link import ParentLink, WorkerLinks


class Seen:
    """Records the lines one of the link's readers received, and its joins and goes."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []
        self.events: list[str] = []

    def joined(self, index: int) -> None:
        self.events.append(f"joined {index}")

    def gone(self, index: int) -> None:
        self.events.append(f"gone {index}")

    def received(self, index: int, message: dict[str, Any]) -> None:
        self.lines.append(message)


async def test_a_bad_or_oversized_line_does_not_deafen_the_link_to_the_lines_after_it() -> None:
    """Lines after one that is too long, one that is not JSON and one whose reader raises
    still reach the relay, presence and publishes; the worker is gone once, at EOF."""
    links = WorkerLinks([])
    relay, presence, publishes = Seen(), Seen(), Seen()

    def broken(index: int, message: dict[str, Any]) -> None:
        if message.get("boom"):
            raise KeyError("a bug in a reader")
        relay.lines.append(message)

    relay.received = broken  # type: ignore[method-assign]
    links.relay, links.presence, links.publishes = relay, presence, publishes  # type: ignore[assignment]
    reader = asyncio.StreamReader(limit=1024)
    for line in (
        json.dumps({"op": "call", "n": 1}).encode(),
        json.dumps({"op": "call", "pad": "x" * 4000}).encode(),  # over the reader's limit
        b"not json",
        json.dumps({"op": "call", "boom": True}).encode(),
        json.dumps({"op": "presence_join", "n": 2}).encode(),
        json.dumps({"op": "call", "n": 3}).encode(),
    ):
        reader.feed_data(line + b"\n")
    reader.feed_eof()
    await links.read(0, reader)
    assert [line.get("n") for line in relay.lines] == [1, 3]
    assert [line.get("n") for line in presence.lines] == [2]
    assert relay.events == presence.events == ["joined 0", "gone 0"]


async def test_a_worker_keeps_the_parents_lines_after_one_that_fails_in_the_same_read() -> None:
    """A worker's link hands on every line of one read even when one is not JSON or its
    reader raises, and tells the worker once the parent's end closes."""
    parent, child = socket.socketpair()
    link = ParentLink(child.detach())
    got: list[dict[str, Any]] = []

    class Relay:
        def received(self, message: dict[str, Any]) -> None:
            if message.get("boom"):
                raise KeyError("a bug in a reader")
            got.append(message)

    link.attach(Relay())  # type: ignore[arg-type]
    gone = asyncio.Event()
    link.on_parent_gone(gone.set)
    parent.sendall(b'{"n": 1}\nnot json\n{"boom": true}\n{"n": 2}\n')
    parent.close()
    await asyncio.wait_for(gone.wait(), 5)
    link.close()
    assert got == [{"n": 1}, {"n": 2}]


def assert_nothing_written(end: socket.socket) -> None:
    """Nothing can be read at ``end`` (non-blocking) yet: the turn has not ended."""
    with pytest.raises(BlockingIOError):
        end.recv(65536)


async def test_a_workers_lines_of_one_turn_leave_in_one_write_in_order() -> None:
    """Three lines sent in one loop turn are not written before the turn ends, then arrive
    together and in order."""
    parent, child = socket.socketpair()
    parent.setblocking(False)
    link = ParentLink(child.detach())
    link.on_parent_gone(lambda: None)  # the worker's end is non-blocking from here on
    for n in range(3):
        link.send({"op": "presence", "n": n})
    assert_nothing_written(parent)
    await asyncio.sleep(0)
    lines = parent.recv(65536).splitlines()
    assert [json.loads(line)["n"] for line in lines] == [0, 1, 2]
    link.close()
    parent.close()


async def test_more_lines_than_the_socket_takes_all_arrive_in_order() -> None:
    """8 MiB of lines sent in one turn (more than the socket pair's buffers) reach the
    parent whole and in order, written as the socket takes them."""
    parent, child = socket.socketpair()
    parent.setblocking(False)
    link = ParentLink(child.detach())
    link.on_parent_gone(lambda: None)
    count = 2048
    for n in range(count):
        link.send({"n": n, "pad": "x" * 4096})
    loop = asyncio.get_running_loop()
    received = bytearray()
    while received.count(b"\n") < count:  # each read waits for the socket to be readable
        received += await asyncio.wait_for(loop.sock_recv(parent, 1 << 20), 10)
    assert [json.loads(line)["n"] for line in received.splitlines()] == list(range(count))
    link.send({"n": "after"})  # the link writes as usual once the backlog is gone
    await asyncio.sleep(0)
    assert json.loads(parent.recv(65536)) == {"n": "after"}
    link.close()
    parent.close()


class Running:
    """A worker's slot in the parent while it runs: its end of the link."""

    def __init__(self, link: asyncio.StreamWriter | None) -> None:
        self.link = link


def test_the_parents_lines_of_one_turn_reach_each_running_worker_in_order() -> None:
    """On uvloop (whose closed transports refuse writes): lines forwarded in one loop turn
    leave when it ends and reach the running worker in order; those to a worker not
    running, or whose link is closing, are dropped without holding up the others."""

    async def scenario() -> None:
        theirs, ours = socket.socketpair()
        theirs.setblocking(False)
        _, writer = await asyncio.open_connection(sock=ours)
        gone_theirs, gone_ours = socket.socketpair()
        _, gone = await asyncio.open_connection(sock=gone_ours)
        gone.close()
        links = WorkerLinks([Running(None), Running(gone), Running(writer)])
        for n in range(3):
            for index in range(3):
                links.forward(index, {"op": "call", "n": n})
        assert_nothing_written(theirs)
        await asyncio.sleep(0)
        theirs.setblocking(True)
        theirs.settimeout(5)
        received = b""
        while received.count(b"\n") < 3:
            received += theirs.recv(65536)
        assert [json.loads(line)["n"] for line in received.splitlines()] == [0, 1, 2]
        writer.close()
        theirs.close()
        gone_theirs.close()

    uvloop.run(scenario())
