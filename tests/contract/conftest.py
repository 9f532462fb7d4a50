"""One rig per transport: a pusher, the receiving side, and a way to put a raw body on the wire.

The transports: memory, zmq, amqp, the WAMP pusher, and ``lines`` (line_transport.py here),
the example custom transport of docs/transports.md, to show the contract is enough to write one.

Every receiving rig runs its handler under a ``Supervisor`` (as the server does) and feeds a
recording server; the WAMP rig's receiving side is a real ``WampServer`` whose demo topic relays
the PUBLISH to a subscriber (a WAMP pusher reaches ``on_publish``, there is no push handler).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import pytest
import zmq

from gos_web_socket.app.demo import AcmeTopic
from gos_web_socket.app.events import PUSH_FAIL, PUSH_SUCCESS, EventDispatcher, PushHandlerFailEvent
from gos_web_socket.app.exceptions import PushUnsupported
from gos_web_socket.app.push import Push
from gos_web_socket.app.router import Router, load_routes
from gos_web_socket.app.testing import WampTestClient
from gos_web_socket.app.transports.amqp.handler import AmqpServerPushHandler
from gos_web_socket.app.transports.amqp.pusher import AmqpPusher
from gos_web_socket.app.transports.handler import ServerPushHandler
from gos_web_socket.app.transports.memory import (
    InMemoryPusher,
    InMemoryServerPushHandler,
    MemoryDelivery,
)
from gos_web_socket.app.transports.pusher import Pusher
from gos_web_socket.app.transports.supervisor import Supervisor
from gos_web_socket.app.transports.wamp import WampPusher
from gos_web_socket.app.transports.zmq.context import shared_context
from gos_web_socket.app.transports.zmq.handler import ZmqServerPushHandler
from gos_web_socket.app.transports.zmq.pusher import ZmqPusher
from gos_web_socket.app.transports.zmq.wire import endpoint
from gos_web_socket.settings.models import DEFAULT_ROUTING, WampSettings, ZmqSettings
from tests.contract.line_transport import LinePusher, LineReceiver
from tests.support.rabbitmq import RabbitMQNode, free_port
from tests.support.server import running_server, url_of

CHANNEL = "acme/channel/42"
ROOM = {"room": "42"}
RECEIVING = ["memory", "zmq", pytest.param("amqp", marks=pytest.mark.broker), "lines"]
"""The AMQP case starts the run's broker (request.getfixturevalue): marked for the fast tier."""
ALL = [*RECEIVING, "wamp"]


@dataclass
class RecordingServer:
    """A PushableServer: what reaches ``acme.topic`` is queued; other topics refuse pushes."""

    pushes: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)

    async def on_push(self, push: Push) -> None:
        if push.request.route.callback != "acme.topic":
            raise PushUnsupported(push.request.route.callback)
        self.pushes.put_nowait(push.data)

    async def flushed(self) -> None:
        """Nothing is queued: a recorded push is already delivered."""


@dataclass
class Rig:
    """A transport under test, from ``pusher.push`` to the topic."""

    transport: str
    pusher: Pusher
    take: Callable[[float], Awaitable[Any]]
    """The next data that reached the topic (waits at most the given seconds)."""
    handler: ServerPushHandler | None = None
    supervisor: Supervisor | None = None
    send_raw: Callable[[bytes], Awaitable[None]] | None = None
    """Put a raw body on the transport, as a foreign producer would."""
    failures: list[PushHandlerFailEvent] = field(default_factory=list)
    cleanup: Callable[[], None] | None = None


async def _queue_take(queue: asyncio.Queue[Any], within: float) -> Any:
    async with asyncio.timeout(within):
        return await queue.get()


@pytest.fixture
def router() -> Router:
    return Router(load_routes(DEFAULT_ROUTING))


async def _supervised(rig: Rig, server: RecordingServer) -> Rig:
    assert rig.handler is not None
    rig.supervisor = Supervisor({rig.transport: rig.handler}, server, first_backoff=0.05)
    await rig.supervisor.start()
    assert rig.handler.is_consuming
    return rig


def _dispatcher(failures: list[PushHandlerFailEvent]) -> EventDispatcher:
    dispatcher = EventDispatcher()
    dispatcher.add_listener(PUSH_FAIL, failures.append)
    dispatcher.add_listener(PUSH_SUCCESS, lambda event: None)
    return dispatcher


async def _memory_rig(router: Router, server: RecordingServer) -> Rig:
    failures: list[PushHandlerFailEvent] = []
    handler = InMemoryServerPushHandler(router, _dispatcher(failures))

    async def send_raw(body: bytes) -> None:
        handler.memory.put(MemoryDelivery(body))

    rig = Rig(
        "memory",
        InMemoryPusher(router, target=handler),
        lambda within: _queue_take(server.pushes, within),
        handler,
        send_raw=send_raw,
        failures=failures,
    )
    return await _supervised(rig, server)


async def _zmq_rig(router: Router, server: RecordingServer) -> Rig:
    failures: list[PushHandlerFailEvent] = []
    settings = ZmqSettings(port=free_port(), send_timeout=1.0)
    handler = ZmqServerPushHandler(settings, router, _dispatcher(failures))
    raw = shared_context().socket(zmq.PUSH)
    raw.setsockopt(zmq.LINGER, 0)
    raw.connect(endpoint(settings))

    async def send_raw(body: bytes) -> None:
        await raw.send(body)

    rig = Rig(
        "zmq",
        ZmqPusher(settings, router),
        lambda within: _queue_take(server.pushes, within),
        handler,
        send_raw=send_raw,
        failures=failures,
        cleanup=raw.close,
    )
    return await _supervised(rig, server)


async def _line_rig(router: Router, server: RecordingServer) -> Rig:
    """The example transport of docs/transports.md, wrapped as any custom one is."""
    failures: list[PushHandlerFailEvent] = []
    port = free_port()
    handler = ServerPushHandler(router, _dispatcher(failures), LineReceiver("127.0.0.1", port))
    handler.name = "lines"

    async def send_raw(body: bytes) -> None:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(body + b"\n")
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    rig = Rig(
        "lines",
        LinePusher(router, "127.0.0.1", port),
        lambda within: _queue_take(server.pushes, within),
        handler,
        send_raw=send_raw,
        failures=failures,
    )
    return await _supervised(rig, server)


async def _amqp_rig(router: Router, server: RecordingServer, node: RabbitMQNode) -> Rig:
    failures: list[PushHandlerFailEvent] = []
    settings = node.amqp_settings(push_timeout=15)
    handler = AmqpServerPushHandler(settings, router, _dispatcher(failures))

    async def send_raw(body: bytes) -> None:
        connection = await aio_pika.connect(node.url)
        async with connection:
            channel = await connection.channel()
            exchange = await channel.get_exchange(settings.exchange_name)
            await exchange.publish(aio_pika.Message(body), routing_key="")

    rig = Rig(
        "amqp",
        AmqpPusher(settings, router),
        lambda within: _queue_take(server.pushes, within),
        handler,
        send_raw=send_raw,
        failures=failures,
    )
    return await _supervised(rig, server)


@contextlib.asynccontextmanager
async def _wamp_rig(router: Router) -> AsyncIterator[Rig]:
    async with running_server(topics=[AcmeTopic()]) as server:
        client = await WampTestClient.connect(url_of(server), origin="127.0.0.1")
        client.subscribe(CHANNEL)
        await asyncio.sleep(0.1)  # the SUBSCRIBE is read before the first PUBLISH
        pusher = WampPusher(WampSettings(port=server.port, timeout=2.0), router)

        async def take(within: float) -> Any:
            return json.loads(await client.next_event(CHANNEL, timeout=within))

        try:
            yield Rig("wamp", pusher, take)
        finally:
            await pusher.close()
            await client.close()


@contextlib.asynccontextmanager
async def _build(request: pytest.FixtureRequest, router: Router) -> AsyncIterator[Rig]:
    transport: str = request.param
    if transport == "wamp":
        async with _wamp_rig(router) as wamp:
            yield wamp
        return
    server = RecordingServer()
    if transport == "memory":
        rig = await _memory_rig(router, server)
    elif transport == "zmq":
        rig = await _zmq_rig(router, server)
    elif transport == "lines":
        rig = await _line_rig(router, server)
    else:
        rig = await _amqp_rig(router, server, request.getfixturevalue("rabbitmq"))
    try:
        yield rig
    finally:
        if rig.supervisor is not None:
            await rig.supervisor.close()
        await rig.pusher.close()
        if rig.cleanup is not None:
            rig.cleanup()


@pytest.fixture(params=ALL)
async def rig(request: pytest.FixtureRequest, router: Router) -> AsyncIterator[Rig]:
    """Every transport, the WAMP pusher included."""
    async with _build(request, router) as built:
        yield built


@pytest.fixture(params=RECEIVING)
async def receiving_rig(request: pytest.FixtureRequest, router: Router) -> AsyncIterator[Rig]:
    """Every transport that has a push handler (a Receiver)."""
    async with _build(request, router) as built:
        yield built
