"""End to end: ZmqPusher → ZmqServerPushHandler → WampServer → acme.topic → WAMP subscriber."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gos_web_socket.app.router import Router
from gos_web_socket.app.server import WampServer
from gos_web_socket.app.testing import WampTestClient
from gos_web_socket.app.transports.zmq.pusher import ZmqPusher
from gos_web_socket.settings.models import ZmqSettings
from tests.support.server import url_of
from tests.support.threads import run_threads
from tests.zmq.conftest import EventLog

CHANNEL = "acme/channel/lobby"


@pytest.fixture
async def subscriber(demo_server: WampServer) -> AsyncIterator[WampTestClient]:
    """A browser stand-in subscribed to the lobby (the CALL round trip confirms it)."""
    client = await WampTestClient.connect(url_of(demo_server))
    client.subscribe(CHANNEL)
    await client.call("acme/rpc/echo", "subscribed")
    yield client
    await client.close()


async def test_async_push_reaches_subscriber(
    subscriber: WampTestClient, zmq_settings: ZmqSettings, router: Router, events: EventLog
) -> None:
    """An awaited push becomes an EVENT on the subscribed channel, data unchanged."""
    async with ZmqPusher(settings=zmq_settings, router=router) as pusher:
        await pusher.push({"msg": "hi"}, "acme_topic", {"room": "lobby"})
        assert await subscriber.next_event(CHANNEL) == {"msg": "hi"}
    assert len(events.successes) == 1


async def test_pushes_from_eight_threads_reach_subscriber(
    subscriber: WampTestClient, zmq_settings: ZmqSettings, router: Router
) -> None:
    """Eight threads calling push_sync at once: the subscriber gets every push."""
    pusher = ZmqPusher(settings=zmq_settings, router=router)

    def worker(n: int) -> None:
        for i in range(25):
            pusher.push_sync({"t": n, "i": i}, "acme_topic", {"room": "lobby"}, timeout=5)

    await asyncio.to_thread(run_threads, worker)
    await asyncio.to_thread(pusher.close_sync)
    received = [await subscriber.next_event(CHANNEL) for _ in range(200)]
    assert sorted((e["t"], e["i"]) for e in received) == [
        (n, i) for n in range(8) for i in range(25)
    ]
