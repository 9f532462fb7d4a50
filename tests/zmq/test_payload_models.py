"""Payload models over ZeroMQ: the pusher refuses a push that does not fit its route's model,
and the server refuses one from a foreign pusher with push_fail, never broadcasting it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import zmq

from gos_web_socket.app.demo.models import ChatMessage
from gos_web_socket.app.exceptions import InvalidPayload, PushFailed
from gos_web_socket.app.message import Message
from gos_web_socket.app.router import Router
from gos_web_socket.app.server import WampServer
from gos_web_socket.app.testing import WampTestClient
from gos_web_socket.app.transports.zmq.context import shared_context
from gos_web_socket.app.transports.zmq.pusher import ZmqPusher
from gos_web_socket.app.transports.zmq.wire import endpoint
from gos_web_socket.settings.models import ZmqSettings
from tests.support.server import url_of
from tests.support.waiting import eventually
from tests.zmq.conftest import EventLog

CHAT = "acme/chat/lobby"
LOBBY = {"room": "lobby"}


@pytest.fixture
async def subscriber(demo_server: WampServer) -> AsyncIterator[WampTestClient]:
    client = await WampTestClient.connect(url_of(demo_server))
    client.subscribe(CHAT)
    await client.call("acme/rpc/echo", "subscribed")  # the round trip confirms the subscribe
    yield client
    await client.close()


async def test_the_pusher_refuses_a_bad_payload_naming_the_field(
    subscriber: WampTestClient, zmq_settings: ZmqSettings, router: Router
) -> None:
    """push() of data that does not fit the model raises InvalidPayload (a PushFailed) naming
    each field; nothing is sent, and the next good push arrives as the model's JSON."""
    async with ZmqPusher(settings=zmq_settings, router=router) as pusher:
        with pytest.raises(PushFailed) as caught:
            await pusher.push({"author": "ann", "txt": "hi"}, "acme_chat", LOBBY)
        assert isinstance(caught.value, InvalidPayload)
        message = str(caught.value)
        assert message.startswith("push to acme_chat: the payload does not fit ChatMessage: ")
        assert "text: Field required" in message and "txt: Extra inputs" in message
        assert pusher.stats.failed == 1
        await pusher.push(ChatMessage(author="ann", text="hello"), "acme_chat", LOBBY)
        event = await subscriber.next_event(CHAT, timeout=10)
    assert event == {"author": "ann", "text": "hello", "sent_at": None}


async def test_push_sync_in_background_mode_refuses_it_at_once(
    zmq_settings: ZmqSettings, router: Router
) -> None:
    """push_sync() in background mode raises InvalidPayload before handing the push over."""
    settings = zmq_settings.model_copy(update={"confirm_mode": "background"})
    pusher = ZmqPusher(settings=settings, router=router)
    try:
        with pytest.raises(InvalidPayload, match="author: String should have at most 40"):
            pusher.push_sync({"author": "x" * 41, "text": "hi"}, "acme_chat", LOBBY)
        assert pusher.in_flight == 0
    finally:
        pusher.close_sync()


async def test_the_server_refuses_a_bad_payload_with_push_fail(
    subscriber: WampTestClient, zmq_settings: ZmqSettings, events: EventLog
) -> None:
    """A body from a foreign pusher (no Python model there) that does not fit fires push_fail
    with InvalidPayload and is never broadcast: the next push from the same socket arrives first."""
    raw = shared_context().socket(zmq.PUSH)
    raw.setsockopt(zmq.LINGER, 0)
    raw.connect(endpoint(zmq_settings))
    try:
        await raw.send(Message(CHAT, {"author": "mallory", "text": ""}).encode())
        await raw.send(Message(CHAT, {"author": "ann", "text": "ok"}).encode())
        event = await subscriber.next_event(CHAT, timeout=10)
    finally:
        raw.close()
    assert event == {"author": "ann", "text": "ok", "sent_at": None}
    await eventually(lambda: len(events.failures) == 1, what="push_fail")
    failure = events.failures[0]
    assert isinstance(failure.error, InvalidPayload)
    assert "text: String should have at least 1 character" in str(failure.error)
    assert json.loads(failure.message)["data"]["author"] == "mallory"
