"""Every WAMP v1 message type and error path of §4.2/§4.5 over real sockets."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gos_web_socket.app.demo import AcmeTopic
from gos_web_socket.app.exceptions import RpcError
from gos_web_socket.app.router import WampRequest
from gos_web_socket.app.server import RpcHandler, WampConnection, WampServer
from gos_web_socket.app.testing import CallError, WampTestClient
from tests.support.server import running_server, url_of

ROUTES = {
    "chat": {"pattern": "chat/{room}", "callback": "acme.topic"},
    "rpc": {"pattern": "app/rpc/{method}", "callback": "test.rpc"},
    "orphan_rpc": {"pattern": "orphan/{method}", "callback": "nobody.rpc"},
}


class SampleRpc(RpcHandler):
    """Methods for every CALLRESULT / CALLERROR shape."""

    name = "test.rpc"

    async def echo(self, connection: WampConnection, request: WampRequest, params: Any) -> Any:
        return params

    async def addFunc(self, connection: WampConnection, request: WampRequest, params: Any) -> Any:
        return sum(params)

    async def snake_case(
        self, connection: WampConnection, request: WampRequest, params: Any
    ) -> Any:
        return "snake"

    async def whoami(self, connection: WampConnection, request: WampRequest, params: Any) -> Any:
        return {"session": connection.session_id, "method": request.attributes["method"]}

    async def nothing(self, connection: WampConnection, request: WampRequest, params: Any) -> Any:
        return None

    async def refuse(self, connection: WampConnection, request: WampRequest, params: Any) -> Any:
        return False

    async def teapot(self, connection: WampConnection, request: WampRequest, params: Any) -> Any:
        raise RpcError("I am a teapot", 418)

    async def crash(self, connection: WampConnection, request: WampRequest, params: Any) -> Any:
        raise KeyError("boom")


@pytest.fixture
async def server() -> AsyncIterator[WampServer]:
    async with running_server(topics=[AcmeTopic()], rpcs=[SampleRpc()], routes=ROUTES) as s:
        yield s


@pytest.fixture
async def clients(server: WampServer) -> AsyncIterator[list[WampTestClient]]:
    """Three connected clients."""
    opened = [await WampTestClient.connect(url_of(server)) for _ in range(3)]
    yield opened
    for client in opened:
        await client.close()


async def call_error(client: WampTestClient, uri: str, *args: Any) -> CallError:
    with pytest.raises(CallError) as caught:
        await client.call(uri, *args)
    return caught.value


# -- CALL -------------------------------------------------------------------------------------


async def test_call_params_shapes(clients: list[WampTestClient]) -> None:
    """One list/object argument is the params; anything else is the argument list."""
    client = clients[0]
    assert await client.call("app/rpc/echo", [1, 2]) == [1, 2]
    assert await client.call("app/rpc/echo", {"a": 1}) == {"a": 1}  # a mapping is not wrapped
    assert await client.call("app/rpc/echo", 1, "two") == [1, "two"]
    assert await client.call("app/rpc/echo") == []


async def test_call_result_scalar_is_wrapped(clients: list[WampTestClient]) -> None:
    """A non-list result is sent as [result]; the connection and request reach the method."""
    client = clients[0]
    assert await client.call("app/rpc/add_func", 4, 5) == [9]  # GOS camel-cases add_func
    assert await client.call("app/rpc/snakeCase") == ["snake"]  # and snake_case works too
    who = await client.call("app/rpc/whoami")
    assert who == {"session": client.session_id, "method": "whoami"}


@pytest.mark.parametrize(
    ("method", "desc", "code"),
    [
        ("nothing", "RPC Error", 500),
        ("refuse", "RPC Error", 500),
        ("teapot", "I am a teapot", 418),
        ("crash", "'boom'", 500),
        ("missing", "Could not execute RPC callback, method not found", 404),
        ("find_method", "Could not execute RPC callback, method not found", 404),
        ("__init__", "Could not execute RPC callback, method not found", 404),
    ],
)
async def test_call_errors(
    clients: list[WampTestClient], method: str, desc: str, code: int
) -> None:
    """Each failing CALL gets exactly one CALLERROR [4, id, procUri, desc, details]."""
    client = clients[0]
    error = await call_error(client, f"app/rpc/{method}", 7)
    assert (error.uri, error.desc) == (f"app/rpc/{method}", desc)
    assert error.details == {"code": code, "rpc": {}, "params": [7], "request": {}}
    assert await client.call("app/rpc/echo", "still open") == ["still open"]


async def test_call_without_registered_handler(clients: list[WampTestClient]) -> None:
    """A route whose callback has no RPC handler answers 404 naming the route."""
    error = await call_error(clients[0], "orphan/x")
    assert error.desc == 'A RPC handler for the "orphan_rpc" route has not been registered.'
    assert error.details["code"] == 404


async def test_call_unroutable_uri_gets_callerror(clients: list[WampTestClient]) -> None:
    """A CALL to a URI no route matches gets CALLERROR 404 (the protocol allows an answer)."""
    error = await call_error(clients[0], "no/such/procedure")
    assert error.uri == "no/such/procedure" and error.details["code"] == 404
    assert clients[0].is_open


# -- PREFIX / CURIE ---------------------------------------------------------------------------


async def test_curie_with_separator_prefix(clients: list[WampTestClient]) -> None:
    """A prefix ending in "/" expands "p:ref" to prefix + ref for CALL, SUBSCRIBE, PUBLISH."""
    client = clients[0]
    client.prefix("rpc", "app/rpc/")
    client.prefix("room", "chat/")
    assert await client.call("rpc:echo", "x") == ["x"]
    client.subscribe("room:lobby")
    client.publish("room:lobby", "hello")
    assert await client.next_event("chat/lobby") == "hello"


async def test_curie_without_separator_is_plain_concatenation(
    clients: list[WampTestClient],
) -> None:
    """A prefix without a trailing "#" or "/" is concatenated as is (WAMP v1), no "#" added."""
    client = clients[0]
    client.prefix("ap", "app/rpc/ec")
    assert await client.call("ap:ho", "concatenated") == ["concatenated"]
    client.prefix("full", "http://example.com/calc#")
    error = await call_error(client, "full:add")  # expands to the full URI, which no route has
    assert error.uri == "http://example.com/calc#add"


async def test_prefix_can_be_redefined(clients: list[WampTestClient]) -> None:
    """A later PREFIX replaces the earlier one for the messages after it."""
    client = clients[0]
    client.prefix("p", "app/rpc/nothing-")
    client.prefix("p", "app/rpc/")
    assert await client.call("p:echo", 1) == [1]


# -- SUBSCRIBE / UNSUBSCRIBE / PUBLISH --------------------------------------------------------


async def test_exclude_me(clients: list[WampTestClient]) -> None:
    """PUBLISH with excludeMe true reaches everyone but the publisher."""
    alice, bob, _ = clients
    for client in (alice, bob):
        client.subscribe("chat/x")
    await alice.call("app/rpc/echo", 0)
    await bob.call("app/rpc/echo", 0)
    alice.publish("chat/x", "not for me", exclude_me=True)
    alice.publish("chat/x", "for all", exclude_me=False)
    assert await bob.next_event("chat/x") == "not for me"
    assert await alice.next_event("chat/x") == "for all"
    assert await bob.next_event("chat/x") == "for all"
    assert alice.events == [("chat/x", "for all")]


async def test_exclude_and_eligible_lists(clients: list[WampTestClient]) -> None:
    """exclude skips the listed sessions; a non-empty eligible limits to the listed ones."""
    alice, bob, carol = clients
    for client in clients:
        client.subscribe("chat/y")
        await client.call("app/rpc/echo", 0)
    alice.publish("chat/y", "no bob", exclude=[bob.session_id])
    alice.publish("chat/y", "carol only", eligible=[carol.session_id])
    alice.publish("chat/y", "end")
    for client in clients:
        while await client.next_event("chat/y") != "end":
            pass
    assert [p for _, p in alice.events] == ["no bob", "end"]
    assert [p for _, p in bob.events] == ["end"]
    assert [p for _, p in carol.events] == ["no bob", "carol only", "end"]


async def test_unsubscribe_stops_events(clients: list[WampTestClient]) -> None:
    """After UNSUBSCRIBE a client gets no more EVENTs for the topic."""
    alice, bob, _ = clients
    alice.subscribe("chat/z")
    bob.subscribe("chat/z")
    await alice.call("app/rpc/echo", 0)
    alice.unsubscribe("chat/z")
    await alice.call("app/rpc/echo", 0)
    await bob.call("app/rpc/echo", 0)
    bob.publish("chat/z", "after")
    assert await bob.next_event("chat/z") == "after"
    assert await alice.call("app/rpc/echo", 0) == [0]
    assert alice.events == []


async def test_publish_without_subscription_still_dispatches(
    server: WampServer, clients: list[WampTestClient]
) -> None:
    """A publisher need not subscribe; publishing creates no live topic (no leak)."""
    alice, bob, _ = clients
    bob.subscribe("chat/p")
    await bob.call("app/rpc/echo", 0)
    alice.publish("chat/p", "from outside")
    alice.publish("chat/nobody-here", "lost")
    assert await bob.next_event("chat/p") == "from outside"
    await alice.call("app/rpc/echo", 0)
    assert set(server.topics) == {"chat/p"}


# -- bad input --------------------------------------------------------------------------------

BAD_FRAMES = {
    "invalid JSON": "[5, 'chat/a'",
    "JSON object": '{"type": 5}',
    "empty list": "[]",
    "unknown type": '[9, "chat/a"]',
    "type 0 from a client": '[0, "x", 1, "me"]',
    "type as a string": '["5", "chat/a"]',
    "element 1 an object": '[5, {"uri": "chat/a"}]',
    "SUBSCRIBE without URI": "[5]",
    "PREFIX with a number": '[1, "p", 3]',
    "CALL without procedure": '[2, "id"]',
    "PUBLISH without event": '[7, "chat/a"]',
    "PUBLISH eligible not a list": '[7, "chat/a", 1, [], "x"]',
    "SUBSCRIBE unroutable": '[5, "no/route/here"]',
    "PUBLISH unroutable": '[7, "no/route/here", 1]',
}


@pytest.mark.parametrize("frame", list(BAD_FRAMES.values()), ids=list(BAD_FRAMES))
async def test_bad_frame_closes_only_that_client(
    clients: list[WampTestClient], frame: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A malformed message closes its connection with 1007 and one log line; others carry on."""
    bad, good, _ = clients
    good.subscribe("chat/ok")
    await good.call("app/rpc/echo", 0)
    with caplog.at_level(logging.WARNING, logger="gos_web_socket.app.server"):
        bad.send_raw(frame)
        assert await bad.wait_closed() == 1007
    lines = [
        r.getMessage() for r in caplog.records if r.name.startswith("gos_web_socket.app.server")
    ]
    assert len(lines) == 1 and bad.session_id in lines[0] and "1007" in lines[0]
    good.publish("chat/ok", "alive")
    assert await good.next_event("chat/ok") == "alive"


async def test_binary_frame_closes_with_1003(clients: list[WampTestClient]) -> None:
    """WAMP v1 is text: a binary frame closes with 1003 unsupported data (RFC 6455 §7.4.1)."""
    clients[0].send_raw(b'[5, "chat/a"]', binary=True)
    assert await clients[0].wait_closed() == 1003


async def test_oversized_message_closes_with_1009() -> None:
    """A message over max_message_size closes that connection with 1009."""
    async with running_server(topics=[AcmeTopic()], routes=ROUTES, max_message_size=1024) as s:
        client = await WampTestClient.connect(url_of(s))
        other = await WampTestClient.connect(url_of(s))
        other.subscribe("chat/big")
        client.publish("chat/big", "x" * 2000)
        assert await client.wait_closed() == 1009
        other.publish("chat/big", "small")
        assert await other.next_event("chat/big") == "small"
        assert other.events == [("chat/big", "small")]
        await other.close()
