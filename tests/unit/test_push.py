"""The explicit push: what the handler builds, and what a topic does with each mode of it.

No socket and no broker: a ``Broker`` over a ``TopicManager`` with channel history, subscribers
that record their frames, and a push handler fed in memory.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from gos_web_socket.app.events import PUSH_SUCCESS, EventDispatcher
from gos_web_socket.app.history import HistoryStore, Recovery, route_limits
from gos_web_socket.app.position import LOCAL, Position
from gos_web_socket.app.push import Capture, Push, PushMode
from gos_web_socket.app.router import Route, RouteCollection, Router, WampRequest
from gos_web_socket.app.router.route import RouteHistory
from gos_web_socket.app.server import PushableTopic, Topic
from gos_web_socket.app.server.broker import Broker
from gos_web_socket.app.server.dispatch import RpcDispatcher, TopicDispatcher
from gos_web_socket.app.server.manager import TopicManager
from gos_web_socket.app.server.topic_views import BoundTopic
from gos_web_socket.app.server.wamp2.serializers import JsonSerializer
from gos_web_socket.app.transports.memory import InMemoryServerPushHandler, MemoryDelivery
from tests.support.subscriber import RecordingSubscriber

WIRE = JsonSerializer(lambda payload, binary: payload)
"""WAMP v2 JSON, framed as the bare payload so that a test can read it back."""

NEWS, FEED = "news/1", "feed/1"


class Peer(RecordingSubscriber):
    """A v2 JSON subscriber that can join topics through the manager."""

    def __init__(self, session_id: str) -> None:
        super().__init__(session_id, WIRE)
        self.subscriptions: dict[str, Any] = {}

    def events(self) -> list[tuple[Any, dict[str, Any] | None]]:
        """Each EVENT as (payload, position or None)."""
        frames = [json.loads(frame) for frame in self.frames]
        return [(f[4][0], f[3].get("_position")) for f in frames]


class NewsTopic(PushableTopic):
    """Broadcasts a push on its own channel, and to ``FEED`` when the data asks for it."""

    name = "news"

    def __init__(self) -> None:
        self.manager: TopicManager | None = None
        self.seen: list[Topic] = []

    async def on_push(self, topic: Topic, request: WampRequest, data: Any, provider: str) -> None:
        self.seen.append(topic)
        topic.broadcast(data)
        topic.broadcast(f"{data} again")  # a second broadcast of one push: never kept twice
        if self.manager is not None and isinstance(data, str) and data.startswith("feed"):
            feed = self.manager.topic(FEED)
            if data == "feed-bound":
                feed.broadcast(data, push=topic.push)
            else:
                feed.broadcast(data)


class Rig:
    """A broker with history on both routes, a news handler and subscribers per channel."""

    def __init__(self) -> None:
        routes = RouteCollection()
        routes.add("news", Route("news/{id}", "news", history=RouteHistory(100, 60.0)))
        routes.add("feed", Route("feed/{id}", "feed", history=RouteHistory(100, 60.0)))
        self.router = Router(routes)
        self.store = HistoryStore(route_limits(self.router))
        self.manager = TopicManager(self.store)
        self.news = NewsTopic()
        self.news.manager = self.manager
        self.broker = Broker(
            self.router, self.manager, TopicDispatcher({"news": self.news}), RpcDispatcher({})
        )

    def join(self, peer: Peer, channel: str) -> Topic:
        topic = self.manager.subscribe(peer, channel, self.router.match(channel))
        assert topic is not None
        return topic

    def push(self, data: Any, offset: int, mode: PushMode = PushMode.LIVE) -> Push:
        request = self.router.match(NEWS)
        capture = Capture(frozenset({NEWS})) if mode is PushMode.READ_BACK else None
        return Push(request, data, "test", Position("e", offset), mode, capture)

    def history(self, channel: str) -> list[tuple[Any, int]]:
        history = self.store.channel(channel)
        assert history is not None
        return [(p.payload, p.position.offset) for p in history]


def at(offset: int) -> dict[str, Any]:
    return {"epoch": "e", "offset": offset}


async def test_a_live_push_is_sent_to_everyone_and_recorded_at_its_position() -> None:
    """Its topic's first broadcast is recorded under the push's position (once), every one is
    sent with it, and the store follows the log."""
    rig, alice = Rig(), Peer("alice")
    rig.join(alice, NEWS)
    await rig.broker.push(rig.push("a", 0))
    assert alice.events() == [("a", at(0)), ("a again", at(0))]
    assert rig.history(NEWS) == [("a", 0)]
    assert rig.store.last == Position("e", 0)


async def test_on_push_gets_the_channel_topic_bound_to_the_push() -> None:
    """The topic ``on_push`` receives is a ``Topic`` that reads and writes the channel's own
    state and carries the push until ``on_push`` returned; the channel topic stays unbound."""
    rig, alice = Rig(), Peer("alice")
    channel = rig.join(alice, NEWS)
    push = rig.push("a", 0)
    await rig.broker.push(push)
    [seen] = rig.news.seen
    assert isinstance(seen, BoundTopic) and isinstance(seen, Topic)
    assert seen.push is push and seen.unbound is channel
    assert (seen.id, len(seen), list(seen), seen.has(alice)) == (NEWS, 1, [alice], True)
    assert seen.subscription_id == channel.subscription_id
    seen.timers_registered = False
    assert channel.timers_registered is False
    assert channel.broadcast("later") == 1  # the channel topic: live, recorded nowhere
    assert alice.events()[-1] == ("later", None)
    assert seen.broadcast("kept") == 1  # the view, kept past on_push (a task): live too
    assert alice.events()[-1] == ("kept", None)
    assert rig.history(NEWS) == [("a", 0)]


async def test_a_broadcast_to_another_topic_from_on_push_is_a_live_one_of_its_own() -> None:
    """The documented rule: only the topic ``on_push`` receives is bound to the push. Another
    topic's broadcast is sent now, with no position, and recorded nowhere, whatever the mode;
    with ``push=topic.push`` it is part of the push, like the push's own topic."""
    rig, alice, bob = Rig(), Peer("alice"), Peer("bob")
    rig.join(alice, NEWS)
    rig.join(bob, FEED)
    await rig.broker.push(rig.push("feed", 0))
    assert bob.events() == [("feed", None)]
    assert rig.history(FEED) == []
    await rig.broker.push(rig.push("feed-refill", 1, PushMode.REFILL))
    assert bob.events()[-1] == ("feed-refill", None)  # live, not a refill
    await rig.broker.push(rig.push("feed-read", 2, PushMode.READ_BACK))
    assert bob.events()[-1] == ("feed-read", None)  # live, not captured
    await rig.broker.push(rig.push("feed-bound", 3))
    assert bob.events()[-1] == ("feed-bound", at(3))
    assert rig.history(FEED) == [("feed-bound", 3)]


async def test_a_refill_reaches_only_recovered_clients_behind_it() -> None:
    """A push handled before a restart is recorded and sent only to clients that recovered
    here and have not reached it; a plain subscriber never gets it, nobody gets it twice."""
    rig, plain, recovered, ahead = Rig(), Peer("plain"), Peer("recovered"), Peer("ahead")
    topic = rig.join(plain, NEWS)
    rig.join(recovered, NEWS)
    rig.join(ahead, NEWS)
    topic.replay(recovered, Recovery([], True, Position("e", 0)))
    topic.replay(ahead, Recovery([], True, Position("e", 5)))
    await rig.broker.push(rig.push("old", 1, PushMode.REFILL))
    assert recovered.events() == [("old", at(1))]  # the second broadcast: not behind any more
    assert plain.events() == [] and ahead.events() == []
    assert rig.history(NEWS) == [("old", 1)]
    assert rig.store.last == Position("e", 1)


async def test_a_read_back_captures_without_sending_recording_or_noting() -> None:
    """A push read back for a recovery: its topic's first broadcast is captured under the
    push's position; nobody is sent anything, history and the store's log stay as they were."""
    rig, alice = Rig(), Peer("alice")
    rig.join(alice, NEWS)
    push = rig.push("old", 7, PushMode.READ_BACK)
    await rig.broker.push(push)
    assert push.capture is not None
    [kept] = push.capture.publications[NEWS]
    assert (kept.position, kept.payload) == (Position("e", 7), "old")
    assert alice.events() == []
    assert rig.history(NEWS) == []
    assert rig.store.last is None


async def test_a_broadcast_outside_any_push_is_live_and_not_recorded() -> None:
    """``Topic.broadcast`` without a push (a timer, ``on_publish``) reads no ambient state: it
    is sent, and not recorded, even while a push of another mode is being handled."""
    rig, alice = Rig(), Peer("alice")
    topic = rig.join(alice, NEWS)
    assert topic.broadcast("tick") == 1
    assert alice.events() == [("tick", None)]
    assert rig.history(NEWS) == []


class Recorder:
    """A ``PushableServer`` that keeps every push it is handed."""

    def __init__(self) -> None:
        self.pushes: list[Push] = []

    async def on_push(self, push: Push) -> None:
        self.pushes.append(push)

    async def flushed(self) -> None:
        """Nothing is queued."""


@pytest.fixture
async def fed() -> Any:
    rig, app, dispatcher = Rig(), Recorder(), EventDispatcher()
    successes: list[Any] = []
    dispatcher.add_listener(PUSH_SUCCESS, successes.append)
    handler = InMemoryServerPushHandler(rig.router, dispatcher)
    handler.name = "memory"
    await handler.start(app)
    yield handler, app, successes
    await handler.close()


async def test_the_handler_builds_one_push_per_delivery_with_its_mode(fed: Any) -> None:
    """A live delivery without a position gets this process's next one; one with a position
    keeps it; a refill is a ``REFILL`` push, with no ``push_success`` and no count."""
    handler, app, successes = fed
    await handler.feed(json.dumps({"topic": NEWS, "data": 1}))
    positioned = MemoryDelivery(json.dumps({"topic": NEWS, "data": 2}).encode())
    positioned.position = Position("stream", 41)
    refill = MemoryDelivery(json.dumps({"topic": NEWS, "data": 3}).encode())
    refill.position, refill.refill = Position("stream", 40), True
    for delivery in (positioned, refill):
        handler.memory.put(delivery)
        await delivery.outcome
    first, second, third = app.pushes
    assert (first.channel, first.data, first.provider, first.mode) == (
        NEWS,
        1,
        "memory",
        PushMode.LIVE,
    )
    assert first.position is not None and first.position.epoch == LOCAL.epoch
    assert (second.position, second.is_live) == (Position("stream", 41), True)
    assert (third.data, third.position, third.mode) == (3, Position("stream", 40), PushMode.REFILL)
    assert not third.is_live and third.capture is None
    assert len(successes) == 2 and handler.stats.received == 2
