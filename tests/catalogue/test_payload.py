"""Payload models: a route's ``payload`` model is enforced by the pushers and by the server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import zmq

from gos_web_socket.app.demo import AcmeRpc, AcmeTopic
from gos_web_socket.app.demo.models import ChatMessage
from gos_web_socket.app.events import PUSH_FAIL, EventDispatcher, PushHandlerFailEvent
from gos_web_socket.app.exceptions import ConfigurationError, InvalidPayload, PushFailed
from gos_web_socket.app.message import Message
from gos_web_socket.app.router import Router, load_routes, load_routes_from_mapping
from gos_web_socket.app.server import WampServer
from gos_web_socket.app.testing import WampTestClient
from gos_web_socket.app.transports.zmq import (
    ZmqPusher,
    ZmqServerPushHandler,
    endpoint,
    shared_context,
)
from gos_web_socket.settings.models import DEFAULT_ROUTING, ZmqSettings
from tests.support.server import eventually, running_server, url_of
from tests.unit.test_cli import one_config_error, run

CHAT = "acme/chat/lobby"
LOBBY = {"room": "lobby"}
MODEL = "gos_web_socket.app.demo.models:ChatMessage"


def route_with(payload: object) -> dict[str, object]:
    return {"chat": {"pattern": "chat/{room}", "callback": "acme.topic", "payload": payload}}


def test_a_route_names_its_payload_model() -> None:
    """`payload: module:Class` loads the model; the demo's acme_chat carries ChatMessage."""
    assert load_routes_from_mapping(route_with(MODEL))["chat"].payload is ChatMessage
    assert load_routes(DEFAULT_ROUTING)["acme_chat"].payload is ChatMessage
    assert load_routes(DEFAULT_ROUTING)["acme_topic"].payload is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("ChatMessage", "not of that form"),
        ("no_such_package.models:Chat", "cannot import no_such_package.models"),
        ("gos_web_socket.app.demo.models:datetime", "datetime is type, not a BaseModel"),
        (42, "not of that form"),
    ],
)
def test_a_wrong_payload_is_one_config_error(value: object, reason: str) -> None:
    """A payload that is not an importable BaseModel stops loading with one line: the key,
    the value and what is allowed."""
    with pytest.raises(ConfigurationError) as caught:
        load_routes_from_mapping(route_with(value), "routes.yaml")
    (line,) = caught.value.problems
    assert line.startswith(f'route "chat" in "routes.yaml": payload: {value!r}: {reason}')
    assert line.endswith("(allowed: 'package.module:Class' naming a pydantic BaseModel subclass)")


def test_the_cli_stops_on_a_wrong_payload(tmp_path: Path) -> None:
    """`gos-websocket routes` with a route naming a missing model: exit 2, one config line."""
    (tmp_path / "routes.yaml").write_text(
        'chat:\n  pattern: "chat/{room}"\n  callback: "acme.topic"\n  payload: "nope.models:X"\n'
    )
    (tmp_path / "gos.yaml").write_text(
        "gos_web_socket:\n  server:\n    router:\n      resources: [routes.yaml]\n"
    )
    line = one_config_error(run("routes", "--config", str(tmp_path / "gos.yaml")))
    assert "payload: 'nope.models:X': cannot import nope.models" in line


def test_routes_without_a_model_pass_data_as_it_is() -> None:
    """A route without a model hands back the very object it was given (no copy, no check)."""
    router = Router(load_routes(DEFAULT_ROUTING))
    data = {"anything": [1, 2]}
    assert router.validate_payload("acme_topic", data) is data


def test_a_model_instance_or_a_dict_travels_as_the_models_json() -> None:
    """A ChatMessage or a dict that fits it becomes the same JSON-ready dict (defaults filled)."""
    router = Router(load_routes(DEFAULT_ROUTING))
    expected = {"author": "ann", "text": "hi", "sent_at": None}
    assert router.validate_payload("acme_chat", {"author": "ann", "text": "hi"}) == expected
    assert router.validate_payload("acme_chat", ChatMessage(author="ann", text="hi")) == expected


@pytest.fixture
def router() -> Router:
    return Router(load_routes(DEFAULT_ROUTING))


@pytest.fixture
def zmq_settings(unused_port: int) -> ZmqSettings:
    return ZmqSettings(port=unused_port, send_timeout=1.0)


@pytest.fixture
def failures() -> list[PushHandlerFailEvent]:
    return []


@pytest.fixture
async def server(
    zmq_settings: ZmqSettings, router: Router, failures: list[PushHandlerFailEvent]
) -> AsyncIterator[WampServer]:
    dispatcher = EventDispatcher()
    dispatcher.add_listener(PUSH_FAIL, failures.append)
    handler = ZmqServerPushHandler(settings=zmq_settings, router=router, dispatcher=dispatcher)
    async with running_server(
        topics=[AcmeTopic()], rpcs=[AcmeRpc()], push_handlers={"zmq": handler}
    ) as server:
        yield server


@pytest.fixture
async def subscriber(server: WampServer) -> AsyncIterator[WampTestClient]:
    client = await WampTestClient.connect(url_of(server))
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
    subscriber: WampTestClient, zmq_settings: ZmqSettings, failures: list[PushHandlerFailEvent]
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
    await eventually(lambda: len(failures) == 1, what="push_fail")
    assert isinstance(failures[0].error, InvalidPayload)
    assert "text: String should have at least 1 character" in str(failures[0].error)
    assert json.loads(failures[0].message)["data"]["author"] == "mallory"
