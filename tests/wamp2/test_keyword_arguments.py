"""WAMP v2 keyword arguments pass through, with autobahn-python: publish → event, call → result."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from autobahn.wamp.types import CallResult, PublishOptions

from gos_web_socket.app.demo import AcmeRpc, AcmeTopic
from gos_web_socket.app.router import WampRequest
from gos_web_socket.app.server import KeywordArguments, WampConnection, WampServer
from gos_web_socket.app.testing import V2Client, WampTestClient
from tests.support.server import running_server, url_of

CHANNEL = "acme/channel/lobby"
ACK = PublishOptions(acknowledge=True)


class RecordingRpc(AcmeRpc):
    """The demo RPC handler, plus ``record``: it keeps the params and answers keyword arguments."""

    def __init__(self) -> None:
        self.params: list[Any] = []

    async def record(self, connection: WampConnection, request: WampRequest, params: Any) -> Any:
        self.params.append(params)
        return KeywordArguments(total=sum(params.values()), keys=sorted(params))


@pytest.fixture
async def rpc() -> RecordingRpc:
    return RecordingRpc()


@pytest.fixture
async def server(rpc: RecordingRpc) -> AsyncIterator[WampServer]:
    async with running_server(topics=[AcmeTopic()], rpcs=[rpc]) as server:
        yield server


@pytest.fixture
async def clients(server: WampServer) -> AsyncIterator[list[V2Client]]:
    """A msgpack and a JSON autobahn-python session; both leave at teardown."""
    joined = [
        await V2Client.join(url_of(server), serializer="msgpack"),
        await V2Client.join(url_of(server), serializer="json"),
    ]
    yield joined
    for client in joined:
        await client.leave()


async def test_publish_keyword_arguments_reach_subscribers(
    server: WampServer, clients: list[V2Client]
) -> None:
    """PUBLISH ArgumentsKw reaches v2 subscribers as EVENT ArgumentsKw, v1 ones as the dict."""
    publisher, subscriber = clients
    v1 = await WampTestClient.connect(url_of(server))
    try:
        await subscriber.subscribe(CHANNEL)
        v1.subscribe(CHANNEL)
        await publisher.subscribe(CHANNEL)
        options = PublishOptions(acknowledge=True, exclude_me=False)
        await publisher.session.publish(CHANNEL, room="lobby", n=2, options=options)
        expected = {"room": "lobby", "n": 2}
        assert await subscriber.next_arguments(CHANNEL) == ((), expected)  # JSON
        assert await publisher.next_arguments(CHANNEL) == ((), expected)  # msgpack
        assert await v1.next_event(CHANNEL) == expected
        await publisher.session.publish(CHANNEL, "plain", options=ACK)
        assert await subscriber.next_arguments(CHANNEL) == (("plain",), {})
    finally:
        await v1.close()


@pytest.mark.parametrize("serializer", ["json", "msgpack"])
async def test_call_keyword_arguments_reach_the_handler(
    server: WampServer, rpc: RecordingRpc, serializer: str
) -> None:
    """CALL ArgumentsKw are the method's params; a KeywordArguments result is RESULT ArgumentsKw."""
    client = await V2Client.join(url_of(server), serializer=serializer)
    try:
        result = await client.session.call("acme/rpc/record", a=1, b=2)
        assert isinstance(result, CallResult)
        assert not result.results and result.kwresults == {"total": 3, "keys": ["a", "b"]}
        assert rpc.params == [{"a": 1, "b": 2}]
        assert isinstance(rpc.params[0], KeywordArguments)
        echoed = await client.session.call("acme/rpc/echo", k="v")
        assert isinstance(echoed, CallResult) and echoed.kwresults == {"k": "v"}
    finally:
        await client.leave()


async def test_v1_call_gets_keyword_results_as_a_dict(server: WampServer) -> None:
    """A v1 client calling the same method gets the keyword result as CALLRESULT's dict."""
    client = await WampTestClient.connect(url_of(server))
    try:
        assert await client.call("acme/rpc/record", {"x": 4}) == {"total": 4, "keys": ["x"]}
    finally:
        await client.close()
