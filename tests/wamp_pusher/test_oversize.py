"""The WAMP pusher refuses a PUBLISH the server would close with 1009 (issue 24, item 4)."""

from __future__ import annotations

import pytest

from gos_web_socket.app.demo import AcmeRpc, AcmeTopic
from gos_web_socket.app.exceptions import PushFailed
from gos_web_socket.app.testing import WampTestClient
from gos_web_socket.push import create_pushers
from tests.support.server import running_server, url_of

LOBBY = "acme/channel/lobby"


@pytest.mark.parametrize(
    ("server_limits", "limit"),
    [({}, 65536), ({"max_frame_size": 8192}, 8192), ({"max_message_size": 4096}, 4096)],
)
async def test_a_publish_over_the_servers_limit_is_refused_and_the_connection_stays(
    server_limits: dict[str, int], limit: int
) -> None:
    """Over the smaller of max_frame_size / max_message_size: PushFailed naming them; the next
    push still arrives on the same connection (no 1009, no reconnect)."""
    async with running_server(topics=[AcmeTopic()], rpcs=[AcmeRpc()], **server_limits) as ws:
        client = await WampTestClient.connect(url_of(ws))
        node = {"wamp": {"enabled": True, "host": "127.0.0.1", "port": ws.port}}
        pusher = create_pushers(pushers=node, server=server_limits).wamp()
        try:
            client.subscribe(LOBBY)
            assert await client.call("acme/rpc/sum", 1, 2) == [3]
            await pusher.push({"n": 0}, "acme_topic", {"room": "lobby"})
            assert await client.next_event(LOBBY, timeout=5) == '{"n":0}'
            connection = pusher._protocol
            with pytest.raises(PushFailed) as refused:
                await pusher.push("x" * limit, "acme_topic", {"room": "lobby"})
            message = str(refused.value)
            assert "server.max_message_size / max_frame_size" in message
            assert f"({limit} bytes)" in message and "1009" in message
            await pusher.push({"n": 1}, "acme_topic", {"room": "lobby"})
            assert await client.next_event(LOBBY, timeout=5) == '{"n":1}'
            assert pusher._protocol is connection and (pusher.stats.failed == 1)
        finally:
            await pusher.close()
            await client.close()


async def test_a_publish_just_under_the_limit_is_delivered() -> None:
    """A PUBLISH a few bytes under max_message_size is sent and reaches the subscriber whole."""
    async with running_server(topics=[AcmeTopic()], rpcs=[AcmeRpc()]) as ws:
        client = await WampTestClient.connect(url_of(ws))
        node = {"wamp": {"enabled": True, "host": "127.0.0.1", "port": ws.port}}
        pusher = create_pushers(pushers=node).wamp()
        try:
            client.subscribe(LOBBY)
            assert await client.call("acme/rpc/sum", 1, 2) == [3]
            text = "x" * (65536 - 200)
            await pusher.push({"t": text}, "acme_topic", {"room": "lobby"})
            assert await client.next_event(LOBBY, timeout=5) == f'{{"t":"{text}"}}'
        finally:
            await pusher.close()
            await client.close()
