"""The PHP client (gos/websocket-client, behind GOS's WAMP pusher) as raw bytes on a socket."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator

import pytest

from gos_web_socket.app.demo import AcmeRpc, AcmeTopic
from gos_web_socket.app.server import WampServer
from gos_web_socket.app.testing import WampTestClient
from tests.support.raw_ws import (
    close_frame,
    masked_frame,
    parse_frames,
    php_upgrade_request,
    split_http,
)
from tests.support.server import running_server, url_of


@pytest.fixture
async def checked_server() -> AsyncIterator[WampServer]:
    """The demo server with the origin check on, as a production config would have it."""
    async with running_server(topics=[AcmeTopic()], rpcs=[AcmeRpc()], origin_check=True) as s:
        yield s


async def php_connect(server: WampServer) -> tuple[socket.socket, bytes]:
    """Send the PHP upgrade request and do ONE recv, as the PHP client does."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", server.port))
    await loop.sock_sendall(sock, php_upgrade_request("127.0.0.1", server.port))
    return sock, await asyncio.wait_for(loop.sock_recv(sock, 65536), 5)


async def test_one_read_holds_101_and_welcome(checked_server: WampServer) -> None:
    """Absolute-form target, scheme-less Origin: one recv has the 101 and the WELCOME frame."""
    sock, data = await php_connect(checked_server)
    with sock:
        assert data[:12] == b"HTTP/1.1 101"
        head, rest = split_http(data)
        assert b"Sec-WebSocket-Protocol: wamp\r\n" in head
        frames, _ = parse_frames(rest)
        welcome = json.loads(frames[0].payload)
        assert frames[0].opcode == 0x1 and welcome[0] == 0 and welcome[2] == 1
        # The PHP client cuts from the first "[" to the first "]" of the buffer.
        text = data.decode("latin-1")
        cut = json.loads(text[text.index("[") : text.index("]") + 1])
        assert cut == welcome


async def test_pusher_publish_reaches_on_publish(checked_server: WampServer) -> None:
    """[7, channel, json-string, [], []] from the PHP pusher is broadcast by acme.topic."""
    browser = await WampTestClient.connect(url_of(checked_server), origin="http://localhost")
    browser.subscribe("acme/channel/9")
    await browser.call("acme/rpc/echo", "ready")
    loop = asyncio.get_running_loop()
    sock, _ = await php_connect(checked_server)
    with sock:
        body = json.dumps([7, "acme/channel/9", '{"price":3}', [], []]).encode()
        await loop.sock_sendall(sock, masked_frame(body))
        assert await browser.next_event("acme/channel/9") == '{"price":3}'
        # The PHP disconnect: CLOSE 1000 "ttfn", then a second CLOSE; the server copes.
        await loop.sock_sendall(sock, close_frame(1000, "ttfn"))
        reply = await asyncio.wait_for(loop.sock_recv(sock, 1024), 5)
        assert parse_frames(reply)[0][0].opcode == 0x8
        try:
            await loop.sock_sendall(sock, close_frame(1000, "Close acknowledged: 1000"))
        except OSError:
            pass  # the server may already have closed TCP: also fine
    assert await browser.call("acme/rpc/sum", 1, 1) == [2]
    await browser.close()
