"""permessage-deflate: server_no_context_takeover negotiated, one compressed EVENT per broadcast."""

from __future__ import annotations

import asyncio
import json
import zlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from autobahn.asyncio.websocket import WebSocketClientFactory, WebSocketClientProtocol
from autobahn.websocket.compress import PerMessageDeflateOffer, PerMessageDeflateResponseAccept

from gos_web_socket.app.position import Position
from gos_web_socket.app.push import Push
from gos_web_socket.app.router import WampRequest
from gos_web_socket.app.server import PushableTopic, Topic, WampServer
from gos_web_socket.app.server.compression import DeflateFormat, deflate_frame, unframe
from gos_web_socket.app.server.session import WireFormat
from gos_web_socket.app.server.wamp2.serializers import serializers
from tests.support.server import running_server
from tests.support.subscriber import RecordingSubscriber
from tests.support.waiting import eventually

ROUTES = {"news": {"pattern": "news/{id}", "callback": "news"}}
CHANNEL = "news/1"
PAYLOAD = {"title": "Release notes", "items": [{"id": i, "text": "fixed " * 8} for i in range(8)]}


class NewsTopic(PushableTopic):
    """Broadcasts every push to the channel."""

    name = "news"

    async def on_push(self, topic: Topic, request: WampRequest, data: Any, provider: str) -> None:
        topic.broadcast(data)


class Client(WebSocketClientProtocol):
    """A WAMP v1 subscriber on autobahn's client, offering permessage-deflate."""

    def onConnect(self, response: Any) -> None:  # noqa: N802
        self.messages: list[Any] = []
        self.arrived = asyncio.Event()

    def onOpen(self) -> None:  # noqa: N802
        self.sendMessage(json.dumps([5, CHANNEL]).encode())

    def onMessage(self, payload: bytes, isBinary: bool) -> None:  # noqa: N802
        self.messages.append(json.loads(payload))
        self.arrived.set()


async def connect(server: WampServer, deflate: bool) -> Client:
    loop = asyncio.get_running_loop()
    factory = WebSocketClientFactory(f"ws://127.0.0.1:{server.port}/", protocols=["wamp"])
    factory.protocol = Client
    if deflate:
        offer = PerMessageDeflateOffer(accept_no_context_takeover=True)
        factory.setProtocolOptions(
            perMessageCompressionOffers=[offer],
            perMessageCompressionAccept=lambda response: PerMessageDeflateResponseAccept(response),
        )
    _, client = await loop.create_connection(factory, "127.0.0.1", server.port)
    await eventually(lambda: bool(getattr(client, "messages", None)), what="WELCOME")
    return client


@pytest.fixture
async def server() -> AsyncIterator[WampServer]:
    async with running_server(topics=[NewsTopic()], routes=ROUTES, compression=True) as server:
        yield server


async def push_and_receive(server: WampServer, clients: list[Client]) -> None:
    await eventually(
        lambda: CHANNEL in server.topics and len(server.topics[CHANNEL]) == len(clients)
    )
    for client in clients:
        client.arrived.clear()
    await server.on_push(Push(server.router.match(CHANNEL), PAYLOAD, "test"))
    for client in clients:
        await asyncio.wait_for(client.arrived.wait(), 5)


async def test_an_autobahn_client_gets_a_compressed_event_it_can_decode(server: WampServer) -> None:
    """A client offering permessage-deflate gets server_no_context_takeover, and the EVENT it
    receives decodes to the push while fewer bytes than the JSON crossed the wire."""
    client = await connect(server, deflate=True)
    agreed = client._perMessageCompress
    assert agreed is not None and agreed.server_no_context_takeover
    before = client.trafficStats.incomingOctetsWireLevel
    await push_and_receive(server, [client])
    assert client.messages[-1] == [8, CHANNEL, PAYLOAD]
    received = client.trafficStats.incomingOctetsWireLevel - before
    assert received < len(json.dumps([8, CHANNEL, PAYLOAD])) / 2
    client.sendClose()


async def test_compressed_and_plain_clients_each_get_the_event(server: WampServer) -> None:
    """A client without the offer still gets the plain EVENT next to compressed clients, and
    the topic keeps them in two groups: one compressed frame, one plain frame per broadcast."""
    compressed = [await connect(server, deflate=True) for _ in range(3)]
    plain = await connect(server, deflate=False)
    assert plain._perMessageCompress is None
    await push_and_receive(server, [*compressed, plain])
    for client in [*compressed, plain]:
        assert client.messages[-1] == [8, CHANNEL, PAYLOAD]
    formats = server.topics[CHANNEL].wire_formats
    assert len(formats) == 2
    assert sum(isinstance(f, DeflateFormat) for f in formats) == 1
    for client in [*compressed, plain]:
        client.sendClose()


async def test_without_the_setting_an_offer_is_declined() -> None:
    """compression off (the default): an offering client speaks uncompressed and still gets
    the EVENT."""
    async with running_server(topics=[NewsTopic()], routes=ROUTES) as server:
        client = await connect(server, deflate=True)
        assert client._perMessageCompress is None
        await push_and_receive(server, [client])
        assert client.messages[-1] == [8, CHANNEL, PAYLOAD]
        client.sendClose()


class Counting(WireFormat):
    """A plain text-frame format that counts how often a frame is built."""

    name = "counting"

    def __init__(self) -> None:
        self.built = 0

    def event_frame(
        self,
        topic: str,
        subscription: int,
        publication: int,
        payload: Any,
        position: Position | None = None,
    ) -> bytes:
        self.built += 1
        body = json.dumps([8, topic, payload]).encode()
        return bytes((0x81, 126)) + len(body).to_bytes(2, "big") + body


def test_one_broadcast_compresses_once_for_every_subscriber() -> None:
    """Subscribers with the same window share one DeflateFormat group: the EVENT is built and
    compressed once, every one of them gets the same bytes, and they inflate to the EVENT."""
    inner = Counting()
    topic = Topic(CHANNEL)
    subscribers = [RecordingSubscriber(str(i), DeflateFormat(inner, 15)) for i in range(5)]
    for subscriber in subscribers:
        topic.add(subscriber)
    assert topic.broadcast(PAYLOAD) == 5
    assert inner.built == 1
    frames = {s.frames[0] for s in subscribers}
    assert len(frames) == 1
    first, body = unframe(frames.pop())
    assert first == 0xC1  # FIN, RSV1 (compressed), text
    inflated = zlib.decompressobj(-15).decompress(body + b"\x00\x00\xff\xff")
    assert json.loads(inflated) == [8, CHANNEL, PAYLOAD]


def test_a_short_event_stays_uncompressed_and_windows_are_honoured() -> None:
    """An EVENT under 64 bytes goes out as it is; a client that asked for a 9-bit window gets a
    stream a 9-bit inflater decodes, in a group of its own."""
    inner = Counting()
    short = DeflateFormat(inner, 15).event_frame(CHANNEL, 1, 1, 1)
    assert short[0] == 0x81
    data = json.dumps(PAYLOAD).encode()
    small = deflate_frame(0x81, data, 9)
    _, body = unframe(small)
    assert zlib.decompressobj(-9).decompress(body + b"\x00\x00\xff\xff") == data
    assert DeflateFormat(inner, 9) != DeflateFormat(inner, 15)


def test_v2_msgpack_events_are_compressed_as_binary_frames() -> None:
    """A WAMP v2 MessagePack EVENT keeps its binary opcode with RSV1 set and inflates to the
    serializer's own bytes."""

    def frame(payload: bytes, binary: bool) -> bytes:
        return bytes((0x82 if binary else 0x81, 126)) + len(payload).to_bytes(2, "big") + payload

    msgpack = serializers(frame)["wamp.2.msgpack"]
    plain = msgpack.event_frame(CHANNEL, 7, 9, PAYLOAD)
    packed = DeflateFormat(msgpack).event_frame(CHANNEL, 7, 9, PAYLOAD)
    first, body = unframe(packed)
    assert first == 0xC2  # FIN, RSV1, binary
    inflated = zlib.decompressobj(-15).decompress(body + b"\x00\x00\xff\xff")
    assert inflated == unframe(plain)[1]
    assert msgpack.decode(inflated)[0] == 36  # EVENT
