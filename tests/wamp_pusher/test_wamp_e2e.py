"""End to end: WampPusher → WampServer → acme.topic's on_publish → WAMP subscriber."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from gos_web_socket.app.demo import AcmeRpc, AcmeTopic
from gos_web_socket.app.router import Router
from gos_web_socket.app.server import WampServer
from gos_web_socket.app.testing import WampTestClient
from gos_web_socket.app.transports.wamp import WampPusher
from gos_web_socket.settings.models import WampSettings
from tests.support.server import make_server, url_of
from tests.support.threads import run_threads

CHANNEL = "acme/channel/lobby"


async def start_demo(port: int, origin_check: bool = False) -> WampServer:
    server = make_server(topics=[AcmeTopic()], rpcs=[AcmeRpc()], origin_check=origin_check)
    await server.start(port=port)
    return server


async def subscribe(server: WampServer) -> WampTestClient:
    """A subscriber to the lobby; the CALL round trip confirms the subscription."""
    client = await WampTestClient.connect(url_of(server), origin="127.0.0.1")
    client.subscribe(CHANNEL)
    await client.call("acme/rpc/echo", "subscribed")
    return client


@pytest.fixture
async def demo_server(wamp_settings: WampSettings) -> AsyncIterator[WampServer]:
    """The demo server with the origin check on: the pusher's Origin must pass it."""
    server = await start_demo(wamp_settings.port, origin_check=True)
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def subscriber(demo_server: WampServer) -> AsyncIterator[WampTestClient]:
    client = await subscribe(demo_server)
    yield client
    await client.close()


async def test_async_push_reaches_subscriber_as_json_string(
    subscriber: WampTestClient, wamp_settings: WampSettings, router: Router
) -> None:
    """The topic's on_publish gets the JSON string GOS sends, and relays it as is."""
    async with WampPusher(settings=wamp_settings, router=router) as pusher:
        await pusher.push({"msg": "hi"}, "acme_topic", {"room": "lobby"})
        event = await subscriber.next_event(CHANNEL)
    assert event == '{"msg":"hi"}' and json.loads(event) == {"msg": "hi"}


async def test_pushes_from_eight_threads_reach_subscriber(
    subscriber: WampTestClient, wamp_settings: WampSettings, router: Router
) -> None:
    """Eight threads calling push_sync at once over one connection: every push arrives."""
    pusher = WampPusher(settings=wamp_settings, router=router)

    def worker(n: int) -> None:
        for i in range(25):
            pusher.push_sync({"t": n, "i": i}, "acme_topic", {"room": "lobby"}, timeout=5)

    await asyncio.to_thread(run_threads, worker)
    received = [json.loads(await subscriber.next_event(CHANNEL)) for _ in range(200)]
    await asyncio.to_thread(pusher.close_sync)
    assert sorted((e["t"], e["i"]) for e in received) == [
        (n, i) for n in range(8) for i in range(25)
    ]


async def test_pusher_reconnects_to_restarted_server(
    wamp_settings: WampSettings, router: Router
) -> None:
    """The server stops and a new one starts on the port: the next push reaches it."""
    first = await start_demo(wamp_settings.port)
    async with WampPusher(settings=wamp_settings, router=router) as pusher:
        try:
            client = await subscribe(first)
            await pusher.push("before", "acme_topic", {"room": "lobby"})
            assert await client.next_event(CHANNEL) == '["before"]'
        finally:
            await first.stop()
        second = await start_demo(wamp_settings.port)
        try:
            client = await subscribe(second)
            await pusher.push("after", "acme_topic", {"room": "lobby"})
            assert await client.next_event(CHANNEL) == '["after"]'
            await client.close()
        finally:
            await second.stop()
