"""Pushes reach WAMP v2 subscribers through every pusher, and v1 and v2 subscribers alike."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from gos_web_socket.app.demo import AcmeRpc, AcmeTopic
from gos_web_socket.app.events import EventDispatcher
from gos_web_socket.app.message import Message
from gos_web_socket.app.router import Router, load_routes
from gos_web_socket.app.server import WampServer
from gos_web_socket.app.testing import V2Client, WampTestClient
from gos_web_socket.app.transports.amqp.handler import AmqpServerPushHandler
from gos_web_socket.app.transports.amqp.pusher import AmqpPusher
from gos_web_socket.app.transports.memory import InMemoryServerPushHandler
from gos_web_socket.app.transports.wamp import WampPusher
from gos_web_socket.app.transports.zmq.handler import ZmqServerPushHandler
from gos_web_socket.app.transports.zmq.pusher import ZmqPusher
from gos_web_socket.settings.models import DEFAULT_ROUTING, WampSettings, ZmqSettings
from tests.support.rabbitmq import RabbitMQNode
from tests.support.server import running_server, url_of
from tests.support.waiting import eventually

CHANNEL = "acme/channel/lobby"
LOBBY = {"room": "lobby"}


@pytest.fixture
def router() -> Router:
    return Router(load_routes(DEFAULT_ROUTING))


@pytest.fixture
def zmq_settings(unused_port: int) -> ZmqSettings:
    return ZmqSettings(port=unused_port, send_timeout=2.0)


@pytest.fixture
async def server(zmq_settings: ZmqSettings, router: Router) -> AsyncIterator[WampServer]:
    """The demo server with the ZeroMQ and in-memory push handlers."""
    dispatcher = EventDispatcher()
    handlers = {
        "zmq": ZmqServerPushHandler(settings=zmq_settings, router=router, dispatcher=dispatcher),
        "memory": InMemoryServerPushHandler(router=router, dispatcher=dispatcher),
    }
    async with running_server(
        topics=[AcmeTopic()], rpcs=[AcmeRpc()], push_handlers=handlers, dispatcher=dispatcher
    ) as server:
        yield server


async def subscriber(server: WampServer, serializer: str = "json") -> V2Client:
    client = await V2Client.join(url_of(server), serializer=serializer)
    await client.subscribe(CHANNEL)  # SUBSCRIBED: the server has added it to the topic
    return client


@pytest.mark.parametrize("serializer", ["json", "msgpack"])
async def test_zmq_push_reaches_v2_subscriber(
    server: WampServer, zmq_settings: ZmqSettings, router: Router, serializer: str
) -> None:
    """ZmqPusher → ZmqServerPushHandler → acme.topic → EVENT to an autobahn-python subscriber."""
    client = await subscriber(server, serializer)
    async with ZmqPusher(settings=zmq_settings, router=router) as pusher:
        await pusher.push({"msg": "zmq"}, "acme_topic", LOBBY)
        assert await client.next_event(CHANNEL) == {"msg": "zmq"}
    await client.leave()


@pytest.mark.parametrize("serializer", ["json", "msgpack"])
async def test_amqp_push_reaches_v2_subscriber(
    rabbitmq: RabbitMQNode, router: Router, serializer: str
) -> None:
    """AmqpPusher → RabbitMQ → AmqpServerPushHandler → acme.topic → EVENT to autobahn-python."""
    settings = rabbitmq.amqp_settings(push_timeout=10)
    handler = AmqpServerPushHandler(settings, router, EventDispatcher())
    async with running_server(
        topics=[AcmeTopic()], rpcs=[AcmeRpc()], push_handlers={"amqp": handler}
    ) as server:
        await eventually(lambda: handler.is_consuming, within=20, what="the AMQP consumer")
        client = await subscriber(server, serializer)
        async with AmqpPusher(settings, router) as pusher:
            await pusher.push({"msg": "amqp"}, "acme_topic", LOBBY)
            assert await client.next_event(CHANNEL, timeout=20) == {"msg": "amqp"}
        await client.leave()


async def test_in_memory_push_reaches_v2_subscriber(server: WampServer) -> None:
    """A body fed to the in-memory push handler arrives as the EVENT's one argument."""
    client = await subscriber(server)
    handler = server.push_handlers["memory"]
    assert isinstance(handler, InMemoryServerPushHandler)
    await handler.feed(Message(CHANNEL, ["plain"]).encode())
    assert await client.next_event(CHANNEL) == ["plain"]
    await client.leave()


async def test_wamp_pusher_reaches_v2_subscriber(router: Router, unused_port: int) -> None:
    """WampPusher publishes with v1 PUBLISH; on_publish relays it to the v2 subscriber."""
    async with running_server(topics=[AcmeTopic()], rpcs=[AcmeRpc()]) as server:
        client = await subscriber(server)
        settings = WampSettings(port=server.port, timeout=2.0)
        async with WampPusher(settings=settings, router=router) as pusher:
            await pusher.push({"msg": "wamp"}, "acme_topic", LOBBY)
            event = await client.next_event(CHANNEL)
        assert json.loads(event) == {"msg": "wamp"}  # GOS's WAMP pusher sends a JSON string
        await client.leave()


async def test_one_push_reaches_v1_and_v2_subscribers_once(
    server: WampServer, zmq_settings: ZmqSettings, router: Router
) -> None:
    """A v1 client and v2 clients (JSON, msgpack) on one channel each get the push exactly once."""
    v1 = await WampTestClient.connect(url_of(server))
    v1.subscribe(CHANNEL)
    await v1.call("acme/rpc/echo", "subscribed")  # answered after the SUBSCRIBE was handled
    v2_json = await subscriber(server, "json")
    v2_msgpack = await subscriber(server, "msgpack")
    assert len(server.topics[CHANNEL]) == 3
    async with ZmqPusher(settings=zmq_settings, router=router) as pusher:
        await pusher.push({"n": 1}, "acme_topic", LOBBY)
        await pusher.push({"n": 2}, "acme_topic", LOBBY)  # a marker: nothing came in between
        assert [await v1.next_event(CHANNEL) for _ in range(2)] == [{"n": 1}, {"n": 2}]
        for client in (v2_json, v2_msgpack):
            assert [await client.next_event(CHANNEL) for _ in range(2)] == [{"n": 1}, {"n": 2}]
    assert v1.unread_events() == [] and v2_json.pending(CHANNEL) == 0
    await v1.close()
    await v2_json.leave()
    await v2_msgpack.leave()


async def test_v1_publish_reaches_v2_and_back(server: WampServer) -> None:
    """A v1 PUBLISH reaches a v2 subscriber and a v2 PUBLISH a v1 subscriber, with exclude_me."""
    v1 = await WampTestClient.connect(url_of(server))
    v1.subscribe(CHANNEL)
    await v1.call("acme/rpc/echo", "subscribed")
    v2 = await subscriber(server)
    v1.publish(CHANNEL, {"from": "v1"}, exclude_me=True)
    assert await v2.next_event(CHANNEL) == {"from": "v1"}
    v2.session.publish(CHANNEL, {"from": "v2"})
    assert await v1.next_event(CHANNEL) == {"from": "v2"}
    v1.publish(CHANNEL, "to v2 only", exclude=[v1.session_id])
    v1.publish(CHANNEL, "not to v2", exclude=[str(v2.session_id)], exclude_me=False)
    assert await v2.next_event(CHANNEL) == "to v2 only"
    assert await v1.next_event(CHANNEL) == "not to v2"
    await v1.close()
    await v2.leave()
