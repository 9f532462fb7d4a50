"""Fixtures for the ZeroMQ transport: the demo routes, a recording server, the event log."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from gos_web_socket.app.demo import AcmeRpc, AcmeTopic
from gos_web_socket.app.events import (
    PUSH_FAIL,
    PUSH_SUCCESS,
    EventDispatcher,
    PushHandlerFailEvent,
    PushHandlerSuccessEvent,
)
from gos_web_socket.app.exceptions import PushUnsupported
from gos_web_socket.app.push import Push
from gos_web_socket.app.router import Router, WampRequest, load_routes
from gos_web_socket.app.server import WampServer
from gos_web_socket.app.transports.zmq.handler import ZmqServerPushHandler
from gos_web_socket.settings.models import DEFAULT_ROUTING, ZmqSettings
from tests.support.server import running_server


@dataclass
class RecordingServer:
    """A PushableServer that queues what reaches ``acme.topic`` and refuses other topics."""

    pushes: asyncio.Queue[tuple[WampRequest, Any, str]] = field(default_factory=asyncio.Queue)

    async def on_push(self, push: Push) -> None:
        if push.request.route.callback != "acme.topic":
            raise PushUnsupported(push.request.route.callback)
        self.pushes.put_nowait((push.request, push.data, push.provider))

    async def flushed(self) -> None:
        """Nothing is queued: a recorded push is already delivered."""

    async def take(self, count: int, within: float = 10.0) -> list[tuple[WampRequest, Any, str]]:
        async with asyncio.timeout(within):
            return [await self.pushes.get() for _ in range(count)]


@dataclass
class EventLog:
    """Every push_success and push_fail event, in order."""

    successes: list[PushHandlerSuccessEvent] = field(default_factory=list)
    failures: list[PushHandlerFailEvent] = field(default_factory=list)


@pytest.fixture
def router() -> Router:
    return Router(load_routes(DEFAULT_ROUTING))


@pytest.fixture
def events() -> EventLog:
    return EventLog()


@pytest.fixture
def dispatcher(events: EventLog) -> EventDispatcher:
    dispatcher = EventDispatcher()
    dispatcher.add_listener(PUSH_SUCCESS, events.successes.append)
    dispatcher.add_listener(PUSH_FAIL, events.failures.append)
    return dispatcher


@pytest.fixture
def zmq_settings(unused_port: int) -> ZmqSettings:
    return ZmqSettings(port=unused_port, send_timeout=0.5)


@pytest.fixture
def server() -> RecordingServer:
    return RecordingServer()


@pytest.fixture
async def handler(
    zmq_settings: ZmqSettings,
    router: Router,
    dispatcher: EventDispatcher,
    server: RecordingServer,
) -> AsyncIterator[ZmqServerPushHandler]:
    """A started handler feeding ``server``."""
    handler = ZmqServerPushHandler(settings=zmq_settings, router=router, dispatcher=dispatcher)
    await handler.start(server)
    try:
        yield handler
    finally:
        await handler.close()


@pytest.fixture
async def demo_server(
    zmq_settings: ZmqSettings, router: Router, dispatcher: EventDispatcher
) -> AsyncIterator[WampServer]:
    """The demo server with the ZeroMQ push handler started by the server itself."""
    handler = ZmqServerPushHandler(settings=zmq_settings, router=router, dispatcher=dispatcher)
    async with running_server(
        topics=[AcmeTopic()], rpcs=[AcmeRpc()], push_handlers={"zmq": handler}
    ) as server:
        assert handler.is_consuming
        yield server
