"""push() to a browser-like WAMP v1 subscriber through RabbitMQ and the real WampServer."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from typing import Any

import aio_pika
import pytest

from gos_web_socket.app.demo import AcmeTopic
from gos_web_socket.app.events import EventDispatcher
from gos_web_socket.app.exceptions import MessageDecodeError, NoRouteMatch, PushUnsupported
from gos_web_socket.app.router import Router, WampRequest, load_routes_from_mapping
from gos_web_socket.app.server import PushableTopic, Topic, TopicHandler, WampServer
from gos_web_socket.app.testing import WampTestClient
from gos_web_socket.app.transports.amqp.handler import AmqpServerPushHandler
from gos_web_socket.app.transports.amqp.pusher import AmqpPusher
from gos_web_socket.settings.models import AmqpSettings
from tests.amqp.conftest import EventLog, dead_letters
from tests.support.server import make_server, url_of
from tests.support.waiting import eventually

ROUTES = {
    "acme_topic": {"pattern": "acme/channel/{room}", "callback": "acme.topic"},
    "plain_topic": {"pattern": "acme/plain/{room}", "callback": "acme.plain"},
    "fragile_topic": {"pattern": "acme/fragile/{room}", "callback": "acme.fragile"},
}


class PlainTopic(TopicHandler):
    """A topic without on_push: pushes to it must fail."""

    name = "acme.plain"


class FragileTopic(PushableTopic):
    """A pushable topic whose on_push always raises."""

    name = "acme.fragile"

    async def on_push(self, topic: Topic, request: WampRequest, data: Any, provider: str) -> None:
        raise RuntimeError("fragile on_push failed")


@pytest.fixture
async def start_node(
    amqp_settings: AmqpSettings, dispatcher: EventDispatcher
) -> AsyncIterator[Callable[..., Any]]:
    """Start a WampServer whose AMQP push handler is wired in; all stopped after the test."""
    async with AsyncExitStack() as stack:

        async def start(node_id: str | None = None, **overrides: Any) -> WampServer:
            settings = amqp_settings.model_copy(update=overrides)
            server = make_server(
                topics=[AcmeTopic(), PlainTopic(), FragileTopic()],
                routes=ROUTES,
                dispatcher=dispatcher,
            )
            handler = AmqpServerPushHandler(settings, server.router, dispatcher, node_id)
            server.push_handlers.add("amqp", handler)
            await server.start(port=0)
            stack.push_async_callback(server.stop)
            assert handler.is_consuming
            return server

        yield start


async def subscribe(server: WampServer, channel: str) -> WampTestClient:
    """A WAMP client subscribed to ``channel``, returned once the server has the subscription."""
    client = await WampTestClient.connect(url_of(server))
    client.subscribe(channel)
    await eventually(lambda: channel in server.topics, within=5, every=0.01)
    return client


@pytest.fixture
async def e2e_pusher(amqp_settings: AmqpSettings) -> AsyncIterator[AmqpPusher]:
    """A pusher whose router knows the suite's routes (generation only)."""
    pusher = AmqpPusher(amqp_settings, Router(load_routes_from_mapping(ROUTES)))
    try:
        yield pusher
    finally:
        await pusher.close()


async def test_async_push_reaches_a_wamp_subscriber(
    start_node: Callable[..., Any], e2e_pusher: AmqpPusher, events: EventLog
) -> None:
    """An awaited push arrives as a WAMP EVENT on the subscribed channel."""
    server = await start_node()
    client = await subscribe(server, "acme/channel/42")
    try:
        await e2e_pusher.push({"msg": "hi"}, "acme_topic", {"room": "42"})
        assert await client.next_event("acme/channel/42") == {"msg": "hi"}
        await eventually(lambda: len(events.success) == 1, within=10, every=0.01)
    finally:
        await client.close()


async def test_sync_pushes_from_eight_threads_reach_a_wamp_subscriber(
    start_node: Callable[..., Any], e2e_pusher: AmqpPusher
) -> None:
    """push_sync from 8 threads at once: the subscriber gets every push exactly once."""
    server = await start_node()
    client = await subscribe(server, "acme/channel/7")

    def worker(thread: int) -> None:
        for i in range(25):
            e2e_pusher.push_sync({"id": f"{thread}-{i}"}, "acme_topic", {"room": "7"}, timeout=30)

    loop = asyncio.get_running_loop()
    try:
        with ThreadPoolExecutor(max_workers=8) as threads:
            await asyncio.gather(*(loop.run_in_executor(threads, worker, t) for t in range(8)))
        await eventually(lambda: len(client.events) >= 200, within=10, every=0.01)
        ids = Counter(event["id"] for _, event in client.events)
        assert len(ids) == 200 and set(ids.values()) == {1}
    finally:
        await client.close()
        await asyncio.to_thread(e2e_pusher.close_sync)


async def test_poison_pushes_through_the_real_server(
    start_node: Callable[..., Any],
    e2e_pusher: AmqpPusher,
    amqp_settings: AmqpSettings,
    raw_channel: aio_pika.abc.AbstractChannel,
    events: EventLog,
) -> None:
    """Non-pushable topic, failing on_push, bad JSON, no route: each fails once, goods arrive."""
    server = await start_node()
    client = await subscribe(server, "acme/channel/1")
    exchange = await raw_channel.get_exchange(amqp_settings.exchange_name)
    try:
        for i in range(5):
            await e2e_pusher.push({"n": i}, "acme_topic", {"room": "1"})
            await e2e_pusher.push({"n": i}, "plain_topic", {"room": "1"})
            await e2e_pusher.push({"n": i}, "fragile_topic", {"room": "1"})
            await exchange.publish(aio_pika.Message(b"not json"), "")
            await exchange.publish(aio_pika.Message(b'{"topic":"zz/1","data":1}'), "")
        await eventually(
            lambda: len(client.events) == 5 and len(events.fail) == 20, within=10, every=0.01
        )
        assert [event["n"] for _, event in client.events] == list(range(5))
        kinds = Counter(type(e.error) for e in events.fail)
        assert kinds == {
            PushUnsupported: 5,
            RuntimeError: 5,
            MessageDecodeError: 5,
            NoRouteMatch: 5,
        }
        dead = await dead_letters(
            raw_channel, amqp_settings.dead_letter_queue, 20, within=3, every=0.02
        )
        assert len(dead) == 20 and dead.count(b"not json") == 5
        assert server.push_handlers["amqp"].is_consuming
    finally:
        await client.close()


async def test_per_node_queues_reach_subscribers_on_both_nodes(
    start_node: Callable[..., Any], amqp_settings: AmqpSettings
) -> None:
    """Two servers in per_node mode, one subscriber each: a single push reaches both."""
    first = await start_node("node-1", queue_mode="per_node")
    second = await start_node("node-2", queue_mode="per_node")
    client_1 = await subscribe(first, "acme/channel/42")
    client_2 = await subscribe(second, "acme/channel/42")
    settings = amqp_settings.model_copy(update={"queue_mode": "per_node"})
    pusher = AmqpPusher(settings, Router(load_routes_from_mapping(ROUTES)))
    try:
        await pusher.push("hello all", "acme_topic", {"room": "42"})
        assert await client_1.next_event("acme/channel/42") == ["hello all"]
        assert await client_2.next_event("acme/channel/42") == ["hello all"]
    finally:
        await pusher.close()
        await client_1.close()
        await client_2.close()
