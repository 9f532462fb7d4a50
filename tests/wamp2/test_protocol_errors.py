"""Protocol violations get ABORT wamp.error.protocol_violation and close only that connection."""

from __future__ import annotations

import logging
from typing import Any

import msgpack
import pytest
from autobahn.wamp.exception import ApplicationError

from gos_web_socket.app.exceptions import FirewallRejection
from gos_web_socket.app.router import WampRequest
from gos_web_socket.app.server import SecuredTopic, Topic, WampConnection, WampServer
from gos_web_socket.app.testing import RawPeer, V2Client, WampTestClient
from tests.support.server import running_server, url_of
from tests.wamp2.conftest import Joiner

ABORT, GOODBYE, ERROR = 3, 6, 8
VIOLATION = "wamp.error.protocol_violation"
ROLES = {"roles": {"subscriber": {}}}


async def expect_abort(peer: RawPeer, reason: str = VIOLATION) -> dict[str, Any]:
    """The next message is ABORT with ``reason``, then the connection closes."""
    message = await peer.receive()
    assert message[0] == ABORT and message[2] == reason, message
    await peer.wait_closed()
    return message[1]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("name", "hello"),
    [
        ("realm not a string", [1, 7, ROLES]),
        ("no roles", [1, "realm1", {}]),
        ("details not a dict", [1, "realm1", []]),
        ("too short", [1, "realm1"]),
    ],
)
async def test_bad_hello(demo_server: WampServer, name: str, hello: list[Any]) -> None:
    """A malformed HELLO is answered with ABORT protocol_violation and a message."""
    peer = await RawPeer.connect(url_of(demo_server))
    peer.send(hello)
    details = await expect_abort(peer)
    assert details["message"], name


@pytest.mark.parametrize(
    "message",
    [[32, 1, {}, "acme/channel/lobby"], [48, 1, {}, "acme/rpc/sum"], [6, {}, "wamp.close.x"]],
)
async def test_message_before_hello(demo_server: WampServer, message: list[Any]) -> None:
    """Anything but HELLO (or ABORT) as the first message aborts the session."""
    peer = await RawPeer.connect(url_of(demo_server))
    peer.send(message)
    assert "before HELLO" in (await expect_abort(peer))["message"]


@pytest.mark.parametrize(
    ("payload", "binary"),
    [(b"[1, ", False), (b"{}", False), (b"[]", False), (b'["x"]', False), (b"[1]", True)],
)
async def test_undecodable_message(demo_server: WampServer, payload: bytes, binary: bool) -> None:
    """Bad JSON, a non-list, an empty list, a non-integer type or a binary frame on JSON abort."""
    peer = await RawPeer.connect(url_of(demo_server))
    peer.send_raw(payload, binary=binary)
    await expect_abort(peer)


async def test_text_frame_on_msgpack(demo_server: WampServer) -> None:
    """wamp.2.msgpack takes binary messages only."""
    peer = await RawPeer.connect(url_of(demo_server), subprotocols=["wamp.2.msgpack"])
    assert peer.subprotocol == "wamp.2.msgpack"
    peer.send([1, "realm1", ROLES])
    message = msgpack.unpackb(await peer.receive())
    assert message[0] == ABORT and message[2] == VIOLATION


@pytest.mark.parametrize(
    "message",
    [
        [1, "realm1", ROLES],  # a second HELLO
        [999, 1],  # unknown type
        [36, 1, 1, {}],  # EVENT is router-to-client
        [32, "one", {}, "acme/channel/lobby"],  # request id not an id
        [32, 2**53 + 1, {}, "acme/channel/lobby"],  # request id out of range
        [16, 1, {"exclude": ["abc"]}, "acme/channel/lobby"],  # exclude not session ids
        [16, 1, {"acknowledge": 1}, "acme/channel/lobby"],  # an integer is not a bool
        [48, 1, {}, "acme/rpc/sum", {"not": "a list"}],
    ],
)
async def test_violation_after_welcome(demo_server: WampServer, message: list[Any]) -> None:
    """In an open session a bad message aborts it too, with protocol_violation."""
    peer = await RawPeer.connect(url_of(demo_server))
    assert (await peer.hello())[0] == 2
    peer.send(message)
    await expect_abort(peer)


async def test_bad_client_does_not_disturb_others(
    demo_server: WampServer, join: Joiner, caplog: pytest.LogCaptureFixture
) -> None:
    """Other v1 and v2 clients go on working while one v2 client is aborted."""
    good = await join()
    v1 = await WampTestClient.connect(url_of(demo_server))
    with caplog.at_level(logging.WARNING, logger="gos_web_socket.app.server.connection"):
        bad = await RawPeer.connect(url_of(demo_server))
        bad.send_raw(b"not json")
        await expect_abort(bad)
    assert any(str(1007) in record.getMessage() for record in caplog.records)
    assert await good.session.call("acme/rpc/sum", 1, 2) == 3
    assert await v1.call("acme/rpc/sum", 1, 2) == [3]
    await v1.close()


async def test_goodbye_is_answered(demo_server: WampServer) -> None:
    """GOODBYE from the client gets GOODBYE wamp.close.goodbye_and_out, then the close."""
    peer = await RawPeer.connect(url_of(demo_server))
    await peer.hello()
    peer.send([GOODBYE, {}, "wamp.close.close_realm"])
    assert await peer.receive() == [GOODBYE, {}, "wamp.close.goodbye_and_out"]
    assert await peer.wait_closed() == 1000


async def test_abort_from_client_closes(demo_server: WampServer) -> None:
    """ABORT from the client ends the connection without a reply."""
    peer = await RawPeer.connect(url_of(demo_server))
    peer.send([ABORT, {}, "wamp.error.no_such_realm"])
    assert await peer.wait_closed() == 1000
    assert peer.messages.empty()


async def test_unknown_subscription_and_registration(demo_server: WampServer) -> None:
    """UNSUBSCRIBE and UNREGISTER of unknown ids get ERROR, and the session stays open."""
    peer = await RawPeer.connect(url_of(demo_server))
    await peer.hello()
    peer.send([34, 1, 12345])
    assert await peer.receive() == [
        ERROR,
        34,
        1,
        {},
        "wamp.error.no_such_subscription",
        ["no subscription 12345"],
    ]
    peer.send([66, 2, 12345])
    error = await peer.receive()
    assert error[:5] == [ERROR, 66, 2, {}, "wamp.error.no_such_registration"]
    peer.send([48, 3, {}, "acme/rpc/sum", [1, 2]])
    assert await peer.receive() == [50, 3, {}, [3]]
    peer.close()


class JoinAnnouncer(SecuredTopic):
    """Greets each subscriber from ``on_subscribe``; refuses channels ending in ``private``."""

    name = "acme.topic"

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
        if topic.id.endswith("private"):
            raise FirewallRejection("private room")

    async def on_subscribe(
        self, connection: WampConnection, topic: Topic, request: WampRequest
    ) -> None:
        topic.broadcast({"joined": connection.session_id})


async def test_subscribed_precedes_events_of_on_subscribe() -> None:
    """SUBSCRIBED leaves before on_subscribe's broadcast, so the client gets its own greeting."""
    async with running_server(topics=[JoinAnnouncer()]) as server:
        client = await V2Client.join(url_of(server))
        await client.subscribe("acme/channel/lobby")
        assert await client.next_event("acme/channel/lobby") == {"joined": str(client.session_id)}
        assert client.session.is_attached()
        await client.leave()


async def test_secured_topic_refusal() -> None:
    """A refused SUBSCRIBE gets ERROR not_authorized; then, as for v1, the session is closed."""
    async with running_server(topics=[JoinAnnouncer()]) as server:
        client = await V2Client.join(url_of(server))
        with pytest.raises(ApplicationError) as refused:
            await client.subscribe("acme/channel/private")
        assert refused.value.error == "wamp.error.not_authorized"
        assert refused.value.kwargs["code"] == 401
        assert (await client.left).reason == "wamp.error.not_authorized"
        await client.leave()
