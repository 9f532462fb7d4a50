"""The per-connection budgets of ``server.limits`` as one client meets them over real sockets.

``tests/hostile/`` attacks a server process with every kind at once; these are the single
budgets, each at a small limit, with the close code, the metric per reason and the fact that
other clients carry on.
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gos_web_socket.app.demo import AcmeTopic
from gos_web_socket.app.metrics import ServerMetrics
from gos_web_socket.app.router import WampRequest
from gos_web_socket.app.server import RpcHandler, WampConnection, WampServer
from gos_web_socket.app.testing import WampTestClient
from tests.support.raw_ws import masked_frame, parse_frames, php_upgrade_request
from tests.support.server import running_server, url_of

ROUTES = {
    "chat": {"pattern": "chat/{room}", "callback": "acme.topic"},
    "rpc": {"pattern": "app/rpc/{method}", "callback": "test.slow"},
}
LIMITS = {
    "messages_per_second": 1,
    "messages_burst": 20,
    "max_subscriptions": 3,
    "max_pending_calls": 2,
}


class SlowRpc(RpcHandler):
    """``wait`` answers once the test sets ``release``: calls stay pending until then."""

    name = "test.slow"

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def wait(self, connection: WampConnection, request: WampRequest, params: Any) -> Any:
        await self.release.wait()
        return "done"


@pytest.fixture
async def server() -> AsyncIterator[WampServer]:
    rpc = SlowRpc()
    async with running_server(
        topics=[AcmeTopic()], rpcs=[rpc], routes=ROUTES, limits=LIMITS
    ) as running:
        yield running
    rpc.release.set()


def closed_for(server: WampServer) -> dict[str, int]:
    return dict(server.stats.closed)


async def test_subscribing_past_max_subscriptions_closes_with_1008(server: WampServer) -> None:
    """The 4th distinct topic closes the client with 1008; a bystander keeps its session."""
    bystander = await WampTestClient.connect(url_of(server))
    client = await WampTestClient.connect(url_of(server))
    for room in ("a", "b", "c", "a", "d"):
        client.subscribe(f"chat/{room}")
    assert await client.wait_closed() == 1008
    assert closed_for(server) == {"max_subscriptions": 1}
    assert bystander.is_open
    await bystander.close()


async def test_calls_past_max_pending_calls_close_with_1008(server: WampServer) -> None:
    """Three calls waiting for their answers, with max_pending_calls 2, close with 1008."""
    client = await WampTestClient.connect(url_of(server))
    for i in range(3):
        client.send([2, str(i), "app/rpc/wait"])
    assert await client.wait_closed() == 1008
    assert closed_for(server) == {"max_pending_calls": 1}


async def test_messages_past_the_burst_close_with_1008_and_count_in_the_metric(
    server: WampServer,
) -> None:
    """21 messages at once over a burst of 20 close with 1008; the metric names the reason."""
    client = await WampTestClient.connect(url_of(server))
    for _ in range(21):
        client.send([1, "p", "http://example.com/#"])
    assert await client.wait_closed() == 1008
    assert closed_for(server) == {"messages_per_second": 1}
    text = ServerMetrics(server).render().decode()
    assert 'gos_websocket_clients_closed_total{reason="messages_per_second"} 1.0' in text


async def test_a_client_within_its_budgets_is_served(server: WampServer) -> None:
    """Three subscriptions, a PREFIX and a call within the limits: nothing is closed."""
    client = await WampTestClient.connect(url_of(server))
    client.prefix("c", "chat/")
    for room in ("a", "b", "c"):
        client.subscribe(f"c:{room}")
    with pytest.raises(TimeoutError):
        await client.wait_closed(timeout=0.3)
    assert closed_for(server) == {}
    await client.close()


async def test_a_flooder_refused_while_it_still_sends_reads_its_1008_before_the_drop(
    server: WampServer,
) -> None:
    """A client refused for its burst that is still blocked sending reads the 1008 close a
    second and a half later: the connection is not reset under it before the linger ends."""
    host, port = "127.0.0.1", server.port
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
    writer.write(php_upgrade_request(host, port))
    await reader.readuntil(b"\r\n\r\n")
    pad = "a" * 60_000
    flood = b"".join(masked_frame(json.dumps([1, f"p{i}", pad]).encode()) for i in range(200))
    writer.write(flood)  # 12 MB: far past the burst and past what the socket buffers take
    sending = asyncio.ensure_future(writer.drain())
    await asyncio.sleep(1.5)  # the flooder is busy: nothing read yet
    data = b""
    try:
        while not any(f.opcode == 0x8 for f in parse_frames(data)[0]):
            data += await asyncio.wait_for(reader.read(1 << 16), 10)
    finally:
        sending.cancel()
        writer.transport.abort()
    close = next(f for f in parse_frames(data)[0] if f.opcode == 0x8)
    assert struct.unpack("!H", close.payload[:2])[0] == 1008
