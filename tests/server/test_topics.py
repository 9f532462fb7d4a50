"""GOS's TopicManager, TopicDispatcher and timer scenarios (§4.3, §4.4, §5) over real sockets."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gos_web_socket.app.events import (
    CLIENT_CONNECTED,
    CLIENT_DISCONNECTED,
    CLIENT_ERROR,
    EventDispatcher,
)
from gos_web_socket.app.exceptions import FirewallRejection, PushUnsupported, TopicNotFound
from gos_web_socket.app.push import Push
from gos_web_socket.app.router import WampRequest
from gos_web_socket.app.server import (
    PushableTopic,
    SecuredTopic,
    Topic,
    TopicHandler,
    WampConnection,
    WampServer,
)
from gos_web_socket.app.testing import CallError, WampTestClient
from tests.support.server import running_server, url_of
from tests.support.waiting import eventually

ROUTES = {
    "rec": {"pattern": "rec/{id}", "callback": "rec"},
    "plain": {"pattern": "plain/{id}", "callback": "plain"},
    "guarded": {"pattern": "guarded/{id}", "callback": "guarded"},
    "ticking": {"pattern": "tick/{id}", "callback": "ticking"},
    "ghost": {"pattern": "ghost/{id}", "callback": "ghost"},
}


class RecordingTopic(PushableTopic):
    """Records every hook with the subscriber count it saw."""

    name = "rec"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []
        self.seen = asyncio.Event()

    def _note(self, verb: str, topic: Topic) -> None:
        self.calls.append((verb, topic.id, len(topic)))
        self.seen.set()

    async def on_subscribe(self, connection: Any, topic: Topic, request: WampRequest) -> None:
        self._note("subscribe", topic)

    async def on_unsubscribe(self, connection: Any, topic: Topic, request: WampRequest) -> None:
        self._note("unsubscribe", topic)

    async def on_publish(
        self, connection: Any, topic: Topic, request: WampRequest, event: Any, *args: Any
    ) -> None:
        self._note("publish", topic)
        if event == "fail":
            raise ValueError("publish went wrong")

    async def on_push(self, topic: Topic, request: WampRequest, data: Any, provider: str) -> None:
        self._note(f"push:{provider}", topic)
        topic.broadcast(data)


class PlainTopic(TopicHandler):
    """A topic without on_push."""

    name = "plain"


class GuardedTopic(SecuredTopic, PushableTopic):
    """Refuses clients and pushes whose payload says so; records secure() calls."""

    name = "guarded"

    def __init__(self) -> None:
        self.secured: list[tuple[str | None, Any, str | None]] = []
        self.published: list[Any] = []

    async def secure(
        self,
        connection: WampConnection | None,
        topic: Topic,
        request: WampRequest,
        payload: Any = None,
        exclude: list[str] | None = None,
        eligible: list[str] | None = None,
        provider: str | None = None,
    ) -> None:
        self.secured.append((connection and connection.session_id, payload, provider))
        if payload == "deny" or request.attributes["id"] == "private":
            raise FirewallRejection("members only")
        if payload == "explode":
            raise RuntimeError("auth backend down")

    async def on_publish(self, connection: Any, topic: Topic, *args: Any) -> None:
        self.published.append(args[1])
        topic.broadcast(args[1])

    async def on_push(self, topic: Topic, request: WampRequest, data: Any, provider: str) -> None:
        topic.broadcast(data)


class TickingTopic(TopicHandler):
    """Broadcasts a counter every 20 ms while its topic has subscribers."""

    name = "ticking"

    def __init__(self) -> None:
        self.registered: list[str] = []

    def register_periodic_timers(self, topic: Topic) -> None:
        self.registered.append(topic.id)
        count = iter(range(1_000_000))
        topic.timers.add("tick", 0.02, lambda: topic.broadcast(next(count)))

    async def on_subscribe(
        self, connection: WampConnection, topic: Topic, request: WampRequest
    ) -> None:
        me = f"{topic.id}#me"
        connection.timers.add("private", 0.02, lambda: connection.send_event(me, "mine"))


@pytest.fixture
def handlers() -> dict[str, Any]:
    return {
        "rec": RecordingTopic(),
        "plain": PlainTopic(),
        "guarded": GuardedTopic(),
        "ticking": TickingTopic(),
    }


@pytest.fixture
def events() -> tuple[EventDispatcher, list[tuple[str, Any]]]:
    """A dispatcher recording the client events."""
    dispatcher = EventDispatcher()
    seen: list[tuple[str, Any]] = []
    for name in (CLIENT_CONNECTED, CLIENT_DISCONNECTED, CLIENT_ERROR):
        dispatcher.add_listener(name, lambda event, name=name: seen.append((name, event)))
    return dispatcher, seen


@pytest.fixture
async def server(
    handlers: dict[str, Any], events: tuple[EventDispatcher, list[tuple[str, Any]]]
) -> AsyncIterator[WampServer]:
    async with running_server(
        topics=handlers.values(), routes=ROUTES, dispatcher=events[0]
    ) as running:
        yield running


async def connect(server: WampServer) -> WampTestClient:
    return await WampTestClient.connect(url_of(server))


async def settle(client: WampTestClient) -> None:
    """Wait until the server handled everything this client sent (messages run in order)."""
    with contextlib.suppress(CallError):
        await client.call("settle/no-route")


# -- TopicManager -----------------------------------------------------------------------------


async def test_subscribe_counts_before_hook(server: WampServer, handlers: dict[str, Any]) -> None:
    """The subscribe hook already sees its connection in len(topic); a second one counts 2."""
    alice, bob = await connect(server), await connect(server)
    alice.subscribe("rec/1")
    await settle(alice)
    bob.subscribe("rec/1")
    await settle(bob)
    assert handlers["rec"].calls == [("subscribe", "rec/1", 1), ("subscribe", "rec/1", 2)]
    assert len(server.topics["rec/1"]) == 2


async def test_double_subscribe_fires_once(server: WampServer, handlers: dict[str, Any]) -> None:
    """Subscribing twice is a no-op: one hook call, one membership."""
    client = await connect(server)
    client.subscribe("rec/2")
    client.subscribe("rec/2")
    await settle(client)
    assert handlers["rec"].calls == [("subscribe", "rec/2", 1)]


async def test_unsubscribe_fires_once_and_empties_lookup(
    server: WampServer, handlers: dict[str, Any]
) -> None:
    """Unsubscribe removes first (hook sees 0), fires once; the lookup and conn forget it."""
    client = await connect(server)
    client.subscribe("rec/3")
    client.unsubscribe("rec/3")
    client.unsubscribe("rec/3")
    client.unsubscribe("rec/never-joined")
    await settle(client)
    assert handlers["rec"].calls == [("subscribe", "rec/3", 1), ("unsubscribe", "rec/3", 0)]
    assert dict(server.topics) == {}


async def test_close_leaves_only_joined_topics(
    server: WampServer, handlers: dict[str, Any]
) -> None:
    """On close a connection leaves the topics it joined, and no other topic's hook runs."""
    alice, bob = await connect(server), await connect(server)
    alice.subscribe("rec/a")
    bob.subscribe("rec/b")
    await settle(alice)
    await settle(bob)
    await alice.close()
    await eventually(lambda: "rec/a" not in server.topics)
    await eventually(lambda: len(handlers["rec"].calls) == 3)
    assert handlers["rec"].calls[2] == ("unsubscribe", "rec/a", 0)
    assert set(server.topics) == {"rec/b"} and server.connections == 1


async def test_client_events(
    server: WampServer, events: tuple[EventDispatcher, list[tuple[str, Any]]]
) -> None:
    """client_connected on open, client_error on a bad frame, client_disconnected on close."""
    client = await connect(server)
    client.send_raw("not json")
    await client.wait_closed()
    _, seen = events
    await eventually(lambda: len(seen) == 3, what="three client events")
    assert [name for name, _ in seen] == [CLIENT_CONNECTED, CLIENT_ERROR, CLIENT_DISCONNECTED]
    assert all(event.connection.session_id == client.session_id for _, event in seen)


# -- TopicDispatcher --------------------------------------------------------------------------


async def test_publish_reaches_handler_and_errors_answer_500(
    server: WampServer, handlers: dict[str, Any]
) -> None:
    """on_publish gets the event; a handler exception sends one CALLERROR 500 and no close."""
    client = await connect(server)
    client.publish("rec/4", "fail")
    error = await client.next_topic_error("rec/4")
    assert (error.uri, error.desc) == ("rec/4", "publish went wrong")
    assert error.details == {"code": 500, "topic": {}, "request": {}, "event": "onPublish"}
    await settle(client)
    assert client.is_open and handlers["rec"].calls == [("publish", "rec/4", 0)]


async def test_unknown_callback_calls_nothing(server: WampServer) -> None:
    """A route whose callback names no topic: nothing is called, the client stays connected."""
    client = await connect(server)
    client.subscribe("ghost/1")
    client.publish("ghost/1", "boo")
    await settle(client)
    assert client.is_open and client.events == []


async def test_secure_runs_before_publish(server: WampServer, handlers: dict[str, Any]) -> None:
    """secure() sees the connection and payload before on_publish runs."""
    client = await connect(server)
    client.subscribe("guarded/1")
    client.publish("guarded/1", "ok")
    assert await client.next_event("guarded/1") == "ok"
    guard = handlers["guarded"]
    assert guard.secured == [(client.session_id, None, None), (client.session_id, "ok", None)]
    assert guard.published == ["ok"]


async def test_firewall_rejection_sends_401_and_closes(
    server: WampServer, handlers: dict[str, Any]
) -> None:
    """FirewallRejection: one CALLERROR 401 in GOS's shape, then the connection is closed."""
    client = await connect(server)
    client.subscribe("guarded/private")
    error = await client.next_topic_error("guarded/private")
    assert error.desc == "You are not authorized to perform this action: members only"
    assert error.details == {"code": 401, "topic": {}, "request": {}, "event": "onSubscribe"}
    assert await client.wait_closed() == 1008
    await eventually(lambda: not server.topics)


async def test_secure_failure_sends_500_and_closes(server: WampServer) -> None:
    """Any other exception in secure(): CALLERROR 500 "Could not secure topic" and close."""
    client = await connect(server)
    client.publish("guarded/2", "explode")
    error = await client.next_topic_error("guarded/2")
    assert error.desc == "Could not secure topic, connection rejected: auth backend down"
    assert error.details["code"] == 500 and error.details["event"] == "onPublish"
    assert await client.wait_closed() == 1008


# -- pushes -----------------------------------------------------------------------------------


async def test_push_reaches_on_push(server: WampServer, handlers: dict[str, Any]) -> None:
    """A push reaches on_push with its provider and is broadcast to the channel."""
    client = await connect(server)
    client.subscribe("rec/5")
    await settle(client)
    await server.on_push(Push(server.router.match("rec/5"), {"v": 1}, "amqp"))
    assert await client.next_event("rec/5") == {"v": 1}
    assert handlers["rec"].calls[-1] == ("push:amqp", "rec/5", 1)


async def test_push_to_empty_channel_leaves_no_topic(server: WampServer) -> None:
    """Pushing where nobody listens works and creates no live topic (GOS leaked one)."""
    await server.on_push(Push(server.router.match("rec/empty"), [1], "zmq"))
    assert dict(server.topics) == {}


async def test_push_unsupported_and_unknown(server: WampServer) -> None:
    """A non-pushable topic raises PushUnsupported (GOS's message); no handler: TopicNotFound."""
    with pytest.raises(PushUnsupported) as caught:
        await server.on_push(Push(server.router.match("plain/1"), [1], "zmq"))
    assert str(caught.value) == 'The "plain" topic does not support push notifications'
    with pytest.raises(TopicNotFound):
        await server.on_push(Push(server.router.match("ghost/1"), [1], "zmq"))


async def test_secured_push(server: WampServer, handlers: dict[str, Any]) -> None:
    """secure() runs for pushes with connection None and the provider; a refusal raises."""
    client = await connect(server)
    client.subscribe("guarded/3")
    await settle(client)
    await server.on_push(Push(server.router.match("guarded/3"), "news", "amqp"))
    with pytest.raises(FirewallRejection):
        await server.on_push(Push(server.router.match("guarded/3"), "deny", "amqp"))
    assert await client.next_event("guarded/3") == "news"
    assert handlers["guarded"].secured[-2:] == [(None, "news", "amqp"), (None, "deny", "amqp")]


# -- timers -----------------------------------------------------------------------------------


async def test_topic_timer_runs_while_subscribed(
    server: WampServer, handlers: dict[str, Any]
) -> None:
    """A topic's timers start with its first subscriber and stop when it empties (no leak)."""
    alice, bob = await connect(server), await connect(server)
    alice.subscribe("tick/1")
    bob.subscribe("tick/1")
    first = await alice.next_event("tick/1")
    second = await alice.next_event("tick/1")
    assert isinstance(first, int) and isinstance(second, int) and second > first
    topic = server.topics["tick/1"]
    task = topic.timers.get("tick")
    assert task is not None and handlers["ticking"].registered == ["tick/1"]
    alice.unsubscribe("tick/1")
    await settle(alice)
    assert topic.timers.is_active("tick")  # bob is still there
    await bob.close()
    await eventually(lambda: task.done(), what="the topic timer is cancelled")
    assert len(topic.timers) == 0 and dict(server.topics) == {}
    alice.subscribe("tick/1")  # a new life for the topic registers again
    await settle(alice)  # not an EVENT: alice may still hold ticks of the old life unread
    assert handlers["ticking"].registered == ["tick/1", "tick/1"]
    await alice.next_event("tick/1")


async def test_connection_timers_cancelled_on_close(server: WampServer) -> None:
    """Per-connection timers tick for their connection and are all cancelled when it closes."""
    client = await connect(server)
    client.subscribe("tick/2")
    assert await client.next_event("tick/2#me") == "mine"
    (connection,) = server.topics["tick/2"]
    task = connection.timers.get("private")
    assert task is not None and not task.done()
    client.abort()
    await eventually(lambda: task.done() and len(connection.timers) == 0)
    await eventually(lambda: not server.topics)
