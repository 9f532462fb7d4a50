"""A topic holding a recovering subscriber: what is broadcast meanwhile waits, and is bounded."""

from __future__ import annotations

import json
from typing import Any

from gos_web_socket.app.history import HistoryStore
from gos_web_socket.app.position import Position
from gos_web_socket.app.push import Push
from gos_web_socket.app.router import Route, WampRequest
from gos_web_socket.app.server import catchup as catchup_module
from gos_web_socket.app.server.topic import Topic
from gos_web_socket.app.server.topic_views import BoundTopic
from gos_web_socket.app.server.wamp2.serializers import JsonSerializer
from tests.support.subscriber import RecordingSubscriber

WIRE = JsonSerializer(lambda payload, binary: payload)
"""WAMP v2 JSON, framed as the bare payload so that a test can read it back."""


class Peer(RecordingSubscriber):
    """A subscriber on v2 JSON whose frames read back as their payloads."""

    def __init__(self, session_id: str) -> None:
        super().__init__(session_id, WIRE)

    def payloads(self) -> list[Any]:
        return [json.loads(frame)[4][0] for frame in self.frames]


def channel_topic() -> Topic:
    store = HistoryStore(lambda channel: (100, 60))
    store.note(Position("e", -1))
    return Topic("acme/channel/1", store.channel("acme/channel/1"), store)


def push(topic: Topic, offset: int, payload: Any) -> None:
    """Broadcast ``payload`` as the topic's ``on_push`` of a live push at ``offset`` does."""
    request = WampRequest("channel", Route("acme/channel/{id}", "acme.topic"), {}, topic.id)
    BoundTopic(topic, Push(request, payload, "test", Position("e", offset))).broadcast(payload)


def test_a_held_subscriber_gets_nothing_until_released_and_then_only_its_own() -> None:
    """While held, a subscriber is written nothing; release hands it the broadcasts meant for
    it (with positions for recorded ones), others were written as usual."""
    topic, held, other = channel_topic(), Peer("held"), Peer("other")
    topic.add(held)
    topic.add(other)
    topic.hold(held)
    push(topic, 0, "a")
    topic.broadcast("not for held", exclude=["held"])
    topic.broadcast("only held", eligible=["held"])
    assert held.frames == []
    assert other.payloads() == ["a", "not for held"]
    kept = topic.release(held)
    assert kept is not None
    assert [(p, json.loads(f)[4][0]) for p, f in kept] == [
        (Position("e", 0), "a"),
        (None, "only held"),
    ]
    push(topic, 1, "b")
    assert held.payloads() == ["b"]  # written again once released


def test_a_subscriber_held_too_long_is_told_some_were_dropped(monkeypatch: Any) -> None:
    """Past HOLD_LIMIT broadcasts the hold keeps none and release says so (None): the
    recovery then reports incomplete; the others still got every broadcast."""
    monkeypatch.setattr(catchup_module, "HOLD_LIMIT", 5)
    topic, held, other = channel_topic(), Peer("held"), Peer("other")
    topic.add(held)
    topic.add(other)
    topic.hold(held)
    for offset in range(8):
        push(topic, offset, offset)
    assert topic.release(held) is None
    assert other.payloads() == list(range(8))


def test_a_held_subscriber_that_leaves_is_forgotten() -> None:
    """A subscriber closed while held is removed cleanly; releasing it afterwards is a no-op."""
    topic, held = channel_topic(), Peer("held")
    topic.add(held)
    topic.hold(held)
    topic.remove(held)
    push(topic, 0, "a")
    assert topic.release(held) == [] and held.frames == [] and len(topic) == 0
