"""Sync push without waiting (``confirm_mode: background``): a slow transport and event records."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from gos_web_socket.app.events import PUSH_FAIL, EventDispatcher, PusherFailEvent
from gos_web_socket.app.exceptions import PushFailed
from gos_web_socket.app.message import Message
from gos_web_socket.app.router import Router
from gos_web_socket.app.transports.pusher import Pusher
from tests.amqp.conftest import make_router


class GatedPusher(Pusher):
    """A transport whose confirms take as long as the test wants: every send waits until
    ``opened`` is set, then takes the push, or refuses data holding ``"refuse": true``."""

    name = "gated"

    def __init__(self, router: Router, **options: Any) -> None:
        super().__init__(router, **options)
        self.opened = threading.Event()
        self.taken: list[Any] = []
        self.disconnects = 0

    async def send(self, envelope: Message, context: dict[str, Any]) -> None:
        # opened is set from test threads, so an asyncio.Event of this loop would not do: poll.
        while not self.opened.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        if isinstance(envelope.data, dict) and envelope.data.get("refuse"):
            raise PushFailed("the gate refused it", transport=self.name, message_id="m-refused")
        self.taken.append(envelope.data)

    async def disconnect(self) -> None:
        self.disconnects += 1


class FailLog:
    """``push_fail`` events, recorded from whichever thread fires them."""

    def __init__(self) -> None:
        self.events: list[PusherFailEvent] = []
        self._lock = threading.Lock()

    def __call__(self, event: Any) -> None:
        with self._lock:
            self.events.append(event)


@pytest.fixture
def router() -> Router:
    return make_router()


@pytest.fixture
def fail_log() -> FailLog:
    return FailLog()


@pytest.fixture
def dispatcher(fail_log: FailLog) -> EventDispatcher:
    dispatcher = EventDispatcher()
    dispatcher.add_listener(PUSH_FAIL, fail_log)
    return dispatcher


@pytest.fixture
def gated(router: Router, dispatcher: EventDispatcher) -> Iterator[GatedPusher]:
    """A background-mode pusher on the slow transport, window 3; closed after the test."""
    pusher = GatedPusher(router, dispatcher=dispatcher)
    pusher.confirm_mode, pusher.max_in_flight = "background", 3
    try:
        yield pusher
    finally:
        pusher.opened.set()
        try:
            pusher.close_sync(timeout=5)
        except PushFailed:
            pass  # the test looked at its failures already
