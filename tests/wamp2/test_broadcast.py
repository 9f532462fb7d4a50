"""Topic.broadcast frames an EVENT once per wire format, however many subscribers share it."""

from __future__ import annotations

import json
from typing import Any

import msgpack

from gos_web_socket.app.server import KeywordArguments, Topic
from gos_web_socket.app.server.wamp1 import Wamp1Format
from gos_web_socket.app.server.wamp2.serializers import serializers
from tests.support.subscriber import RecordingSubscriber


class FrameCounter:
    """A frame builder that records each payload it frames (the frame is the payload)."""

    def __init__(self) -> None:
        self.built: list[tuple[bytes, bool]] = []

    def __call__(self, payload: bytes, binary: bool = False) -> bytes:
        self.built.append((payload, binary))
        return payload


def make_topic() -> tuple[Topic, FrameCounter, list[RecordingSubscriber]]:
    frame = FrameCounter()
    v1, v2 = Wamp1Format(frame), serializers(frame)
    kinds = [v1, v1, v2["wamp.2.json"], v2["wamp.2.json"], v2["wamp.2.msgpack"]]
    topic = Topic("acme/channel/lobby")
    connections = [RecordingSubscriber(str(n), kind) for n, kind in enumerate(kinds, start=1)]
    for connection in connections:
        topic.add(connection)
    return topic, frame, connections


def test_one_frame_per_wire_format() -> None:
    """Five subscribers in three formats: three frames built, every subscriber written once."""
    topic, frame, connections = make_topic()
    assert topic.broadcast({"n": 1}) == 5
    assert len(frame.built) == 3
    v1, _, v2_json, v2_json_too, v2_msgpack = connections
    assert json.loads(v1.frames[0]) == [8, "acme/channel/lobby", {"n": 1}]
    assert v2_json.frames == v2_json_too.frames
    event: list[Any] = json.loads(v2_json.frames[0])
    assert event[:2] == [36, topic.subscription_id] and event[3:] == [{}, [{"n": 1}]]
    assert msgpack.unpackb(v2_msgpack.frames[0]) == event  # same publication id in both
    assert frame.built[-1][1] is True  # msgpack goes out as a binary frame


def test_v1_only_topic_builds_one_frame() -> None:
    """Without v2 subscribers a broadcast builds the v1 frame alone, no v2 encoding."""
    frame = FrameCounter()
    topic = Topic("acme/channel/lobby")
    v1 = Wamp1Format(frame)
    for n in range(3):
        topic.add(RecordingSubscriber(str(n), v1))
    assert topic.broadcast("hi", exclude=["0"]) == 2
    assert frame.built == [(b'[8,"acme/channel/lobby","hi"]', False)]


def test_exclude_and_eligible_across_formats() -> None:
    """exclude and eligible apply to v1 and v2 subscribers by the same string session ids."""
    topic, _, connections = make_topic()
    assert topic.broadcast("x", exclude=["1", "3"]) == 3
    assert topic.broadcast("y", eligible=["2", "5"]) == 2
    assert [len(c.frames) for c in connections] == [0, 2, 0, 1, 2]


def test_removing_the_last_v2_subscriber_restores_the_v1_path() -> None:
    """Once only v1 subscribers remain, a broadcast builds the v1 frame alone."""
    topic, frame, connections = make_topic()
    for connection in connections[2:]:
        topic.remove(connection)
    topic.broadcast("z")
    assert len(frame.built) == 1


def test_subscription_ids_are_per_topic() -> None:
    """Every topic has its own subscription id."""
    assert Topic("a").subscription_id != Topic("b").subscription_id


def test_a_payload_one_format_cannot_carry_reaches_nobody() -> None:
    """msgpack bytes cannot go to JSON clients: the broadcast fails before any write."""
    topic, _, connections = make_topic()
    try:
        topic.broadcast({"blob": b"\x00\x01"})
    except (TypeError, ValueError):
        pass
    else:
        raise AssertionError("bytes were framed for a JSON subscriber")
    assert all(connection.frames == [] for connection in connections)


def test_keyword_arguments_are_v2_arguments_kw_and_the_v1_payload() -> None:
    """A KeywordArguments payload: v2 EVENT ArgumentsKw with empty Arguments, v1 the dict."""
    topic, _, connections = make_topic()
    assert topic.broadcast(KeywordArguments(room="lobby")) == 5
    v1, _, v2_json, _, v2_msgpack = connections
    assert json.loads(v1.frames[0]) == [8, "acme/channel/lobby", {"room": "lobby"}]
    event: list[Any] = json.loads(v2_json.frames[0])
    assert event[3:] == [{}, [], {"room": "lobby"}]
    assert msgpack.unpackb(v2_msgpack.frames[0]) == event


def test_eligible_and_exclude_together() -> None:
    """eligible picks recipients in every format, and exclude still removes some of them."""
    topic, _, connections = make_topic()
    assert topic.broadcast("e", exclude=["3"], eligible=["1", "3", "5", "9"]) == 2
    assert [len(c.frames) for c in connections] == [1, 0, 0, 0, 1]
