"""The core WAMP v1 exchange against the demo server over real sockets."""

from __future__ import annotations

import pytest

from gos_web_socket.app.exceptions import TopicNotFound
from gos_web_socket.app.push import Push
from gos_web_socket.app.server import WampServer
from gos_web_socket.app.testing import CallError
from tests.server.conftest import ClientFactory


async def test_welcome_carries_session_and_version(connect: ClientFactory) -> None:
    """WELCOME is [0, sessionId, 1, ident] and the wamp subprotocol is negotiated."""
    client = await connect()
    assert client.welcome[0] == 0 and client.welcome[2] == 1
    assert client.session_id and "[" not in client.session_id and "]" not in client.welcome[3]
    assert client.subprotocol == "wamp"
    assert client.messages[0] is client.welcome


async def test_handshake_without_subprotocol_is_accepted(connect: ClientFactory) -> None:
    """A client that offers no subprotocol still gets a session (third-party clients)."""
    client = await connect(subprotocols=())
    assert client.session_id and client.subprotocol is None


async def test_call_sum_returns_wrapped_result(connect: ClientFactory) -> None:
    """CALL acme/rpc/sum answers CALLRESULT with the sum wrapped in a list (GOS)."""
    client = await connect()
    assert await client.call("acme/rpc/sum", 2, 3) == [5]
    assert await client.call("acme/rpc/sum", [1, 2, 3.5]) == [6.5]


async def test_publish_reaches_subscribers(connect: ClientFactory) -> None:
    """PUBLISH to acme/channel/1 becomes EVENT for every subscriber, publisher included."""
    alice, bob = await connect(), await connect()
    alice.subscribe("acme/channel/1")
    bob.subscribe("acme/channel/1")
    assert await alice.call("acme/rpc/echo", "sync") == ["sync"]
    assert await bob.call("acme/rpc/echo", "sync") == ["sync"]
    alice.publish("acme/channel/1", {"text": "hi"})
    assert await bob.next_event("acme/channel/1") == {"text": "hi"}
    assert await alice.next_event("acme/channel/1") == {"text": "hi"}


async def test_push_reaches_subscribers(demo_server: WampServer, connect: ClientFactory) -> None:
    """on_push routes to acme.topic, which broadcasts the data to the channel."""
    client = await connect()
    client.subscribe("acme/channel/7")
    await client.call("acme/rpc/echo", 1)
    request = demo_server.router.match("acme/channel/7")
    await demo_server.on_push(Push(request, {"n": 1}, "test"))
    assert await client.next_event("acme/channel/7") == {"n": 1}


async def test_push_errors_propagate(demo_server: WampServer) -> None:
    """on_push raises TopicNotFound for a route whose callback is no topic (GOS swallowed it)."""
    request = demo_server.router.match("acme/rpc/sum")  # callback acme.rpc: no such topic
    with pytest.raises(TopicNotFound):
        await demo_server.on_push(Push(request, {}, "test"))


async def test_unknown_rpc_method(connect: ClientFactory) -> None:
    """CALL to a missing method answers CALLERROR code 404."""
    client = await connect()
    with pytest.raises(CallError) as caught:
        await client.call("acme/rpc/nope")
    assert caught.value.details["code"] == 404
