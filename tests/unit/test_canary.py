"""The canary's verdict: deaf only when its marker is overdue and nothing else arrived."""

from __future__ import annotations

import asyncio

from gos_web_socket.app.exceptions import PushHandlerError
from gos_web_socket.app.transports.canary import Canary, marker_body
from tests.support.waiting import eventually


class Loopback:
    """A transport that hands every marker back after ``delay`` seconds (None: never)."""

    def __init__(self, delay: float | None) -> None:
        self.delay = delay
        self.canary: Canary | None = None
        self.deafened: list[PushHandlerError] = []

    async def send(self, body: bytes) -> None:
        if self.delay is not None:
            asyncio.get_running_loop().call_later(self.delay, self.give_back, body)

    def give_back(self, body: bytes) -> None:
        assert self.canary is not None
        assert self.canary.take(body) is True

    def make(self, interval: float = 0.05, timeout: float = 0.2) -> Canary:
        self.canary = Canary("n1", self.send, interval, timeout, self.deafened.append)
        return self.canary


async def test_a_marker_that_comes_back_keeps_the_handler_hearing() -> None:
    """Markers back within the timeout: never deaf, each one counted."""
    loop = Loopback(delay=0.01)
    canary = loop.make()
    assert await canary.check() is None
    assert await canary.check() is None
    assert canary.returned == 2 and not canary.deaf and loop.deafened == []


async def test_a_marker_behind_a_backlog_is_waited_for() -> None:
    """A marker three timeouts late while pushes keep arriving is not a deaf handler."""
    loop = Loopback(delay=0.6)
    canary = loop.make(timeout=0.2)

    async def pushes() -> None:
        while True:
            assert canary.take(b'{"topic":"a","data":1}') is False
            await asyncio.sleep(0.05)

    arriving = asyncio.create_task(pushes())
    try:
        assert await canary.check() is None
    finally:
        arriving.cancel()
    assert canary.returned == 1


async def test_a_marker_lost_in_silence_makes_it_deaf_until_one_comes_back() -> None:
    """No marker and nothing else: deaf, reported once; after that a returning marker clears it."""
    loop = Loopback(delay=None)
    canary = loop.make(interval=0.05, timeout=0.1)
    canary.start()
    await eventually(lambda: loop.deafened, 2, "deaf", every=0.02)
    assert canary.deaf and canary.misses == 1 and len(loop.deafened) == 1
    assert "did not come back" in str(loop.deafened[0])
    loop.delay = 0.01
    canary.start()  # the supervisor restarted the handler: a marker goes at once
    await eventually(lambda: not canary.deaf, 2, "a marker came back", every=0.02)
    await canary.stop()
    assert not canary.deaf and canary.misses == 1


def test_another_nodes_marker_is_dropped_but_not_counted_as_ours() -> None:
    """A marker with another node's token is a marker (dropped), and returns nothing here."""
    canary = Canary("n1", Loopback(None).send, 1, 1, lambda error: None)
    assert canary.take(marker_body("n2.1")) is True
    assert canary.returned == 0
