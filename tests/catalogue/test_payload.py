"""Payload models: how a route names one, and how a wrong one stops loading in one line."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gos_web_socket.app.demo import AcmeTopic
from gos_web_socket.app.demo.models import ChatMessage
from gos_web_socket.app.events import EventDispatcher
from gos_web_socket.app.exceptions import ConfigurationError
from gos_web_socket.app.message import Message
from gos_web_socket.app.position import Position
from gos_web_socket.app.router import Router, load_routes, load_routes_from_mapping
from gos_web_socket.app.testing import RawPeer, WampTestClient
from gos_web_socket.app.transports.memory import InMemoryServerPushHandler, MemoryDelivery
from gos_web_socket.settings.models import DEFAULT_ROUTING
from tests.contract.conftest import RecordingServer
from tests.support.server import running_server, url_of
from tests.unit.test_cli import one_config_error, run

CHAT = "acme/chat/lobby"
CHAT_ROUTE = {
    "pattern": "acme/chat/{room}",
    "callback": "acme.topic",
    "payload": "gos_web_socket.app.demo.models:ChatMessage",
}

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


async def test_a_refill_that_does_not_fit_reaches_no_topic() -> None:
    """A push read back from the log at start (a refill) whose data does not fit its model
    reaches no topic, as it did not when it came; a good refill after it does, as JSON."""
    handler = InMemoryServerPushHandler(Router(load_routes(DEFAULT_ROUTING)), EventDispatcher())
    server = RecordingServer()
    await handler.start(server)
    try:
        for offset, data in enumerate(({"author": "x"}, {"author": "ann", "text": "hi"})):
            delivery = MemoryDelivery(Message("acme/chat/1", data).encode())
            delivery.refill, delivery.position = True, Position("epoch", offset)
            handler.memory.put(delivery)
        pushed = await asyncio.wait_for(server.pushes.get(), 10)
        assert pushed == {"author": "ann", "text": "hi", "sent_at": None}
        assert server.pushes.empty()
    finally:
        await handler.close()


async def test_a_client_publish_must_fit_the_routes_model() -> None:
    """A v1 or v2 PUBLISH on a typed channel that does not fit its model is refused
    (v1 CALLERROR code 400, v2 ERROR invalid_argument) and reaches nobody; one that fits
    reaches subscribers as the model's JSON."""
    routes = {"acme_chat": {**CHAT_ROUTE}}
    async with running_server(topics=[AcmeTopic()], routes=routes) as server:
        subscriber = await WampTestClient.connect(url_of(server))
        subscriber.subscribe(CHAT)
        v1 = await WampTestClient.connect(url_of(server))
        v1.publish(CHAT, {"author": "x"})
        error = await v1.next_topic_error(CHAT)
        assert error.details["code"] == 400 and "text" in error.desc
        v2 = await RawPeer.connect(url_of(server))
        await v2.hello()
        v2.send([16, 1, {"acknowledge": True}, CHAT, [{"text": 3}]])
        assert (await v2.receive())[:5] == [8, 16, 1, {}, "wamp.error.invalid_argument"]
        v2.send([16, 2, {"acknowledge": True}, CHAT, [], {"author": "ann"}])
        assert (await v2.receive())[:5] == [8, 16, 2, {}, "wamp.error.invalid_argument"]
        v2.send([16, 3, {"acknowledge": True}, CHAT, [{"author": "ann", "text": "hi"}]])
        assert (await v2.receive())[:2] == [17, 3]
        expected = {"author": "ann", "text": "hi", "sent_at": None}
        assert await subscriber.next_event(CHAT) == expected
        assert subscriber.unread_events() == []
        v2.close()
        for client in (v1, subscriber):
            await client.close()
