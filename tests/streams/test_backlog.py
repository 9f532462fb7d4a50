"""The slow-reader guard measures a backlog; a client it cuts off recovers what it missed."""

from __future__ import annotations

import asyncio

from gos_web_socket.app.demo import AcmeTopic
from gos_web_socket.app.push import Push
from gos_web_socket.app.testing import WampTestClient
from gos_web_socket.testing import memory_pusher, use_memory_pusher
from tests.streams.recovery import ROUTES, RecoveringPeer
from tests.support.server import make_container, running_server, service, url_of
from tests.support.waiting import eventually

CHANNEL = "acme/channel/1"
DEEP = {
    "acme_topic": {**ROUTES["acme_topic"], "history": {"size": 20_000, "ttl": 300}},
}
"""A history deeper than any burst here: the kernel's socket buffers take megabytes first."""


async def test_one_big_push_cuts_off_no_reader() -> None:
    """A 5 MB push to three subscribers that read reaches all three; none is cut off."""
    async with running_server(topics=[AcmeTopic()], routes=ROUTES) as server:
        readers = [await WampTestClient.connect(url_of(server)) for _ in range(3)]
        for reader in readers:
            reader.subscribe(CHANNEL)
        await eventually(lambda: len(server.topics.get(CHANNEL, ())) == 3)
        big = "x" * 5_000_000
        await server.on_push(Push(server.router.match(CHANNEL), big, "test"))
        for reader in readers:
            assert await reader.next_event(CHANNEL, timeout=20) == big
        assert server.stats.cut_off == 0
        for reader in readers:
            await reader.close()


async def test_a_cut_off_client_reconnects_and_recovers_what_it_missed() -> None:
    """A v2 client that stops reading during a burst is cut off after slow_reader_timeout;
    back with its last position it gets the rest: every push once, in order."""
    container = make_container(
        topics=[AcmeTopic()], routes=DEEP, max_outgoing_buffer=65536, slow_reader_timeout=0.3
    )
    use_memory_pusher(container)
    async with service(container, "gos_web_socket.runtime"):
        server = service(container, "gos_web_socket.server")
        pusher = memory_pusher(container)
        peer = await RecoveringPeer.connect(url_of(server), CHANNEL)
        await peer.report()
        transport = peer.peer._protocol.transport  # type: ignore[union-attr]
        transport.pause_reading()
        sent = 0
        while server.stats.cut_off == 0:  # a burst of 2 KiB pushes, until the guard acts
            for _ in range(50):
                await pusher.push({"n": sent, "pad": "p" * 2048}, "acme_topic", {"room": "1"})
                sent += 1
            await asyncio.sleep(0.01)
            assert sent < 20_000, "the stalled client was never cut off"
        assert sent <= 20_000  # all of it in the channel's history
        transport.resume_reading()
        got = peer.state
        assert got is not None
        try:  # what reached the client's socket before the cut
            while True:
                await peer._one(timeout=1)
        except (TimeoutError, AssertionError):
            pass
        handler = service(container, "gos_web_socket.server_push_handler.registry")["memory"]
        await eventually(lambda: handler.stats.received >= sent, what="every push handled")
        before = len(got.payloads)
        assert before < sent
        back = await RecoveringPeer.connect(url_of(server), CHANNEL, since=got.position)
        report = await back.report()
        assert back.state is not None
        assert report["recovered"] is True and report["replayed"] == sent - before
        numbers = [p["n"] for p in got.payloads] + [p["n"] for p in back.state.payloads]
        assert numbers == list(range(sent))
        back.close()
