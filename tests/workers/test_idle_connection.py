"""What one idle subscribed connection keeps (the 100,000-connection budget, docs/scaling.md)."""

from __future__ import annotations

from gos_web_socket.app.demo import AcmeRpc, AcmeTopic
from gos_web_socket.app.server.connection import WampConnection
from gos_web_socket.app.testing import WampTestClient
from tests.support.server import running_server, url_of

DICT_KEYS_BEFORE_RESIZE = 85
"""CPython 3.11 doubles a dict's table (1.5 → 3.3 KiB here) when an 86th key arrives."""


async def test_an_idle_subscriber_stays_under_the_dict_resize_and_keeps_no_handshake_heads() -> (
    None
):
    """A subscribed connection's __dict__ stays at 85 keys or fewer, without the raw request
    and response heads, and its protocol options come from its class."""
    handlers = {"topics": [AcmeTopic()], "rpcs": [AcmeRpc()]}
    async with running_server(**handlers, keepalive_ping=True) as server:
        client = await WampTestClient.connect(url_of(server))
        try:
            client.subscribe("acme/channel/1")
            await client.call("acme/rpc/sum", 1)
            (connection,) = server.live_connections
            assert isinstance(connection, WampConnection)
            assert len(connection.__dict__) <= DICT_KEYS_BEFORE_RESIZE, sorted(connection.__dict__)
            assert connection.http_request_data == b""
            assert connection.http_response_data == ""
            assert "autoPingInterval" not in connection.__dict__
            assert connection.autoPingInterval == server.settings.server.keepalive_interval
            assert connection.subscriptions
        finally:
            await client.close()


async def test_options_set_later_reach_only_new_connections() -> None:
    """setProtocolOptions after a connection opened changes the next connection, as autobahn's
    copy-on-connect did, and the earlier one keeps its value."""
    async with running_server(topics=[AcmeTopic()]) as server:
        first = await WampTestClient.connect(url_of(server))
        factory = next(iter(server.live_connections)).factory
        factory.setProtocolOptions(maxMessagePayloadSize=4096, allowNullOrigin=True)
        second = await WampTestClient.connect(url_of(server))
        try:
            sizes = sorted(c.maxMessagePayloadSize for c in server.live_connections)
            assert sizes == [4096, server.settings.server.max_message_size]
        finally:
            await first.close()
            await second.close()
