"""AMQP suite fixtures: unique broker names per test, a recording server, wait helpers."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import pytest

from gos_web_socket.app.events import PUSH_FAIL, PUSH_SUCCESS, EventDispatcher
from gos_web_socket.app.exceptions import PushUnsupported
from gos_web_socket.app.push import Push
from gos_web_socket.app.router import Route, RouteCollection, Router
from gos_web_socket.app.transports.amqp.handler import AmqpServerPushHandler
from gos_web_socket.app.transports.amqp.pusher import AmqpPusher
from gos_web_socket.app.transports.supervisor import Supervisor
from gos_web_socket.settings.models import AmqpSettings
from tests.support.rabbitmq import RabbitMQNode
from tests.support.waiting import settles


def make_router() -> Router:
    """acme_topic as shipped, plus plain_topic whose topic cannot take pushes."""
    routes = RouteCollection()
    routes.add("acme_topic", Route("acme/channel/{room}", "acme.topic"))
    routes.add("plain_topic", Route("acme/plain/{room}", "acme.plain"))
    return Router(routes)


@dataclass
class RecordingServer:
    """A PushableServer that records pushes; plain_topic cannot take pushes, {"boom"} raises."""

    received: list[tuple[str, Any]] = field(default_factory=list)

    async def on_push(self, push: Push) -> None:
        request, data = push.request, push.data
        if request.route_name == "plain_topic":
            raise PushUnsupported(request.route_name)
        if isinstance(data, dict) and data.get("boom"):
            raise RuntimeError("on_push exploded")
        self.received.append((request.matched, data))

    async def flushed(self) -> None:
        """Nothing is queued: a recorded push is already delivered."""

    def counts(self, key: str = "n") -> Counter[Any]:
        return Counter(data[key] for _, data in self.received if isinstance(data, dict))


@dataclass
class EventLog:
    success: list[Any] = field(default_factory=list)
    fail: list[Any] = field(default_factory=list)


@pytest.fixture
def router() -> Router:
    return make_router()


@pytest.fixture
def events() -> EventLog:
    return EventLog()


@pytest.fixture
def dispatcher(events: EventLog) -> EventDispatcher:
    dispatcher = EventDispatcher()
    dispatcher.add_listener(PUSH_SUCCESS, events.success.append)
    dispatcher.add_listener(PUSH_FAIL, events.fail.append)
    return dispatcher


@pytest.fixture
def amqp_settings(rabbitmq: RabbitMQNode) -> AmqpSettings:
    """Settings pointing at the run's broker, with names no other test uses."""
    return rabbitmq.amqp_settings(push_timeout=15, reconnect_interval=0.5)


@pytest.fixture
async def raw_channel(rabbitmq: RabbitMQNode) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    """A plain aio-pika channel for inspecting queues and publishing as PHP would."""
    connection = await aio_pika.connect(rabbitmq.url)
    try:
        yield await connection.channel()
    finally:
        await connection.close()


async def drain(channel: aio_pika.abc.AbstractChannel, queue_name: str) -> list[bytes]:
    """Every body waiting in ``queue_name`` (basic.get until empty)."""
    queue = await channel.get_queue(queue_name, ensure=True)
    bodies = []
    while (message := await queue.get(fail=False, no_ack=True)) is not None:
        bodies.append(message.body)
    return bodies


async def dead_letters(
    channel: aio_pika.abc.AbstractChannel,
    queue_name: str,
    count: int = 1,
    within: float = 5.0,
    every: float = 0.05,
) -> list[bytes]:
    """The bodies drained from ``queue_name`` once at least ``count`` came (dead-lettering
    is asynchronous in the broker); a failure shows those that came."""
    dead: list[bytes] = []

    async def more() -> list[bytes]:
        dead.extend(await drain(channel, queue_name))
        return dead

    what = f"{count} dead letters in {queue_name}"
    return await settles(more, lambda bodies: len(bodies) >= count, within, every, what)


@pytest.fixture
async def pusher(amqp_settings: AmqpSettings, router: Router) -> AsyncIterator[AmqpPusher]:
    """An AMQP pusher on the test's names, closed after the test."""
    pusher = AmqpPusher(amqp_settings, router)
    try:
        yield pusher
    finally:
        await pusher.close()


StartHandler = Callable[..., Awaitable[AmqpServerPushHandler]]


@pytest.fixture
async def start_handler(
    amqp_settings: AmqpSettings, router: Router, dispatcher: EventDispatcher
) -> AsyncIterator[StartHandler]:
    """Start handlers (settings overridable per call); every one is closed after the test."""
    started: list[AmqpServerPushHandler] = []

    async def start(
        app: Any, node_id: str | None = None, **overrides: Any
    ) -> AmqpServerPushHandler:
        settings = amqp_settings.model_copy(update=overrides)
        handler = AmqpServerPushHandler(settings, router, dispatcher, node_id=node_id)
        started.append(handler)
        await handler.start(app)
        return handler

    try:
        yield start
    finally:
        for handler in started:
            await handler.close()


Supervise = Callable[..., Awaitable[tuple[AmqpServerPushHandler, Supervisor]]]


@pytest.fixture
async def supervise(
    amqp_settings: AmqpSettings, router: Router, dispatcher: EventDispatcher
) -> AsyncIterator[Supervise]:
    """Run handlers under a Supervisor, as the server does; every one is closed after the test."""
    started: list[Supervisor] = []

    async def run(
        app: Any,
        node_id: str | None = None,
        supervisor: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> tuple[AmqpServerPushHandler, Supervisor]:
        settings = amqp_settings.model_copy(update=overrides)
        handler = AmqpServerPushHandler(settings, router, dispatcher, node_id=node_id)
        running = Supervisor({"amqp": handler}, app, **(supervisor or {}))
        started.append(running)
        await running.start()
        return handler, running

    try:
        yield run
    finally:
        for running in started:
            await running.close()
