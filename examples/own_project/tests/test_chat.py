"""The example project's own tests, written with the package's helpers (gos_web_socket.testing)."""

from __future__ import annotations

from pathlib import Path

import pytest
from chat.realtime import Container

from gos_web_socket.app.exceptions import TopicNotFound
from gos_web_socket.testing import V2Client, WampTestClient, memory_pusher, running, url_of

CONFIG = Path(__file__).resolve().parents[1] / "config.yaml"
PUSHERS_OFF = {"zmq": {"enabled": False}}


async def test_a_published_message_reaches_the_room() -> None:
    """What one client publishes to chat/room/lobby reaches a subscriber, wrapped by ChatTopic."""
    async with running(Container, CONFIG, pushers=PUSHERS_OFF) as container:
        listener = await WampTestClient.connect(url_of(container))
        speaker = await WampTestClient.connect(url_of(container))
        listener.subscribe("chat/room/lobby")
        await listener.call("chat/rpc/shout", "ready")  # its SUBSCRIBE is handled by now
        speaker.publish("chat/room/lobby", "hello", exclude_me=True)
        event = await listener.next_event("chat/room/lobby", timeout=5)
        assert event == {"room": "lobby", "said": "hello"}
        await listener.close()
        await speaker.close()


async def test_the_rpc_answers() -> None:
    """chat/rpc/shout answers the params in capitals (GOS wraps a v1 result in a list)."""
    async with running(Container, CONFIG, pushers=PUSHERS_OFF) as container:
        client = await WampTestClient.connect(url_of(container))
        assert await client.call("chat/rpc/shout", "hi", "there") == ["HI THERE"]
        await client.close()


async def test_the_demo_handlers_are_off() -> None:
    """config.yaml says server.demo: false, so acme.topic is not registered."""
    async with running(Container, CONFIG, pushers=PUSHERS_OFF) as container:
        registry = container.gos_web_socket.topic_registry()
        assert "chat.room" in registry
        with pytest.raises(TopicNotFound):
            registry["acme.topic"]


async def test_a_push_reaches_the_room_through_the_in_memory_pusher() -> None:
    """A push through the in-memory pusher reaches the room's subscriber with no broker, and
    the pusher records it."""
    async with running(Container, CONFIG, memory=True, pushers=PUSHERS_OFF) as container:
        client = await WampTestClient.connect(url_of(container))
        client.subscribe("chat/room/lobby")
        await client.call("chat/rpc/shout", "ready")  # its SUBSCRIBE is handled by now
        pusher = memory_pusher(container)
        await pusher.push({"text": "hi"}, "chat_room", {"room": "lobby"})
        event = await client.next_event("chat/room/lobby", timeout=5)
        assert event == {"room": "lobby", "said": {"text": "hi"}}
        assert [message.topic for message, _ in pusher.sent] == ["chat/room/lobby"]
        await client.close()


async def test_a_wamp_v2_client_gets_the_push_too() -> None:
    """A WAMP v2 session (autobahn's) subscribed to the room receives a push, and its call
    gets the RPC's value."""
    async with running(Container, CONFIG, memory=True, pushers=PUSHERS_OFF) as container:
        client = await V2Client.join(url_of(container))
        await client.subscribe("chat/room/lobby")
        assert await client.session.call("chat/rpc/shout", "v2") == "V2"
        await memory_pusher(container).push({"text": "hi"}, "chat_room", {"room": "lobby"})
        event = await client.next_event("chat/room/lobby", timeout=5)
        assert event == {"room": "lobby", "said": {"text": "hi"}}
        await client.leave()
