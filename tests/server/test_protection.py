"""Origin and IP checks, keepalive, TLS, the outgoing-buffer bound, and the server lifecycle."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import ssl
import sys
from pathlib import Path
from typing import Any

import pytest

from gos_web_socket.app.demo import AcmeRpc, AcmeTopic
from gos_web_socket.app.events import (
    CLIENT_REJECTED,
    CONNECTION_REJECTED,
    SERVER_LAUNCHED,
    ClientRejectedEvent,
    ConnectionRejectedEvent,
    EventDispatcher,
)
from gos_web_socket.app.push import Push
from gos_web_socket.app.server import WampServer
from gos_web_socket.app.testing import ConnectFailed, WampTestClient
from tests.support.rabbitmq import free_port
from tests.support.raw_ws import masked_frame, parse_frames, split_http
from tests.support.server import make_server, running_server, url_of
from tests.support.tls import self_signed
from tests.support.waiting import eventually

REPO = Path(__file__).resolve().parents[2]


def rejections() -> tuple[EventDispatcher, list[tuple[str, Any]]]:
    dispatcher = EventDispatcher()
    seen: list[tuple[str, Any]] = []
    for name in (CLIENT_REJECTED, CONNECTION_REJECTED):
        dispatcher.add_listener(name, lambda event, name=name: seen.append((name, event)))
    return dispatcher, seen


async def raw_upgrade(port: int, origin: str | None, rcvbuf: int | None = None) -> socket.socket:
    """A non-blocking socket that has sent an upgrade request (with ``Origin`` if given)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    headers = [
        "GET /chat HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    ]
    if origin is not None:
        headers.append(f"Origin: {origin}")
    await loop.sock_sendall(sock, ("\r\n".join(headers) + "\r\n\r\n").encode())
    return sock


async def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (at most 5 s)."""
    loop = asyncio.get_running_loop()
    chunks = []
    async with asyncio.timeout(5):
        try:
            while chunk := await loop.sock_recv(sock, 65536):
                chunks.append(chunk)
        except ConnectionResetError:  # closed with our request unread: an RST, not a FIN
            pass
    return b"".join(chunks)


# -- origin -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin",
    [
        "http://localhost:8080",
        "https://127.0.0.1",
        "127.0.0.1",
        "http://app.example.com",
        "app.example.com:443",
    ],
)
async def test_allowed_origins_pass(origin: str) -> None:
    """localhost, 127.0.0.1 and configured origins pass, with or without a scheme."""
    async with running_server(
        topics=[AcmeTopic()], origin_check=True, origins=["app.example.com"]
    ) as server:
        client = await WampTestClient.connect(url_of(server), origin=origin)
        assert client.session_id
        await client.close()


@pytest.mark.parametrize("origin", ["http://evil.example", "evil.example", None])
async def test_refused_origin_gets_403_and_events(origin: str | None) -> None:
    """Another origin (or none) gets HTTP 403, client_rejected then connection_rejected."""
    dispatcher, seen = rejections()
    async with running_server(origin_check=True, dispatcher=dispatcher) as server:
        with await raw_upgrade(server.port, origin) as sock:
            reply = await read_all(sock)
        assert reply.startswith(b"HTTP/1.1 403")
        assert server.connections == 0
    assert [name for name, _ in seen] == [CLIENT_REJECTED, CONNECTION_REJECTED]
    rejected, connection = seen[0][1], seen[1][1]
    assert isinstance(rejected, ClientRejectedEvent) and rejected.origin == (origin or "")
    assert isinstance(connection, ConnectionRejectedEvent) and connection.has_request


async def test_origin_check_off_accepts_anything() -> None:
    """With origin_check off any Origin, even a bare name, is accepted."""
    async with running_server(topics=[AcmeTopic()]) as server:
        client = await WampTestClient.connect(url_of(server), origin="whatever")
        assert client.session_id
        await client.close()


# -- blocked IP addresses ---------------------------------------------------------------------


async def test_blocked_ip_is_closed_without_reply() -> None:
    """A blocked address is closed before HTTP, with connection_rejected and no request."""
    dispatcher, seen = rejections()
    async with running_server(
        ip_address_check=True, blocked_ip_addresses=["127.0.0.1"], dispatcher=dispatcher
    ) as server:
        with await raw_upgrade(server.port, None) as sock:
            assert await read_all(sock) == b""
        await eventually(lambda: len(seen) == 1)
    assert seen[0][0] == CONNECTION_REJECTED and not seen[0][1].has_request


async def test_ip_check_off_or_other_ip_passes() -> None:
    """Only listed addresses are refused, and only while ip_address_check is on."""
    for check, blocked in ((False, ["127.0.0.1"]), (True, ["192.168.1.1"])):
        async with running_server(
            topics=[AcmeTopic()], ip_address_check=check, blocked_ip_addresses=blocked
        ) as server:
            client = await WampTestClient.connect(url_of(server))
            assert client.session_id
            await client.close()


# -- keepalive --------------------------------------------------------------------------------


async def test_keepalive_closes_silent_clients_only() -> None:
    """With keepalive on, a client that never pongs is dropped; a ponging one stays."""
    async with running_server(
        topics=[AcmeTopic()], keepalive_ping=True, keepalive_interval=1
    ) as server:
        healthy = await WampTestClient.connect(url_of(server))
        with await raw_upgrade(server.port, None) as silent:
            data = await read_all(silent)  # ends when the server drops it
        head, rest = split_http(data)
        frames, _ = parse_frames(rest)
        assert head.startswith(b"HTTP/1.1 101")
        assert [f.opcode for f in frames] == [0x1, 0x9]  # WELCOME, then one unanswered ping
        assert healthy.is_open and server.connections == 1
        await healthy.close()


# -- TLS --------------------------------------------------------------------------------------


async def test_tls_serves_wss(tmp_path: Path) -> None:
    """tls.enabled serves wss:// with the configured certificate."""
    certfile, keyfile = self_signed(tmp_path)
    tls = {"enabled": True, "certfile": certfile, "keyfile": keyfile}
    async with running_server(topics=[AcmeTopic()], rpcs=[AcmeRpc()], tls=tls) as server:
        context = ssl.create_default_context(cafile=str(certfile))
        context.check_hostname = False
        client = await WampTestClient.connect(url_of(server, "wss"), ssl=context)
        assert await client.call("acme/rpc/sum", 1, 2) == [3]
        with pytest.raises((ConnectFailed, OSError, TimeoutError)):
            await WampTestClient.connect(url_of(server), timeout=2)  # plain ws is refused
        await client.close()


# -- slow readers -----------------------------------------------------------------------------


async def test_client_that_never_reads_is_cut_off() -> None:
    """A subscriber that never reads is aborted at max_outgoing_buffer; 50 others get all."""
    async with running_server(topics=[AcmeTopic()], max_outgoing_buffer=65536) as server:
        readers = [await WampTestClient.connect(url_of(server)) for _ in range(50)]
        for reader in readers:
            reader.subscribe("acme/channel/all")
        loop = asyncio.get_running_loop()
        stalled = await raw_upgrade(server.port, None, rcvbuf=4096)
        for uri in ("acme/channel/all", "acme/channel/bulk"):
            await loop.sock_sendall(stalled, masked_frame(json.dumps([5, uri]).encode()))
        await eventually(lambda: len(server.topics.get("acme/channel/all", ())) == 51)
        await eventually(lambda: "acme/channel/bulk" in server.topics)
        shared = server.router.match("acme/channel/all")
        bulk = server.router.match("acme/channel/bulk")
        sent = 0
        while "acme/channel/bulk" in server.topics:  # it leaves when the stalled one is cut
            await server.on_push(Push(shared, sent, "test"))
            for _ in range(4):  # fill the stalled client's buffers quickly
                await server.on_push(Push(bulk, "x" * 60_000, "test"))
            sent += 1
            await asyncio.sleep(0)
            assert sent < 500, "the stalled client was never cut off"
        await server.on_push(Push(shared, "after", "test"))
        assert server.connections == 50
        for reader in readers:
            assert await reader.next_event("acme/channel/all", timeout=10) == 0
            while await reader.next_event("acme/channel/all", timeout=10) != "after":
                pass
            assert [p for _, p in reader.events] == [*range(sent), "after"]
        stalled.close()


# -- lifecycle --------------------------------------------------------------------------------


async def test_start_dispatches_launched_and_starts_push_handlers() -> None:
    """start() binds port 0, fires server_launched and starts handlers; a failing one is logged."""

    class Handler:
        def __init__(self, fail: bool) -> None:
            self.fail, self.started, self.closed = fail, False, False

        async def start(self, app: Any) -> None:
            if self.fail:
                raise ConnectionError("broker down")
            self.started = app

        async def close(self) -> None:
            self.closed = True

    dispatcher = EventDispatcher()
    launched: list[Any] = []
    dispatcher.add_listener(SERVER_LAUNCHED, launched.append)
    good, bad = Handler(False), Handler(True)
    server = make_server(
        topics=[AcmeTopic()], push_handlers={"good": good, "bad": bad}, dispatcher=dispatcher
    )
    await server.start(port=0)
    try:
        assert server.port != 0 and launched[0].server is server
        assert good.started is server and bad.started is False
        client = await WampTestClient.connect(url_of(server))
        assert server.connections == 1
    finally:
        await server.stop()
    assert good.closed and bad.closed
    assert await client.wait_closed() == 1001


async def test_stop_closes_clients_with_1001_promptly() -> None:
    """stop() closes every client with 1001 and stops accepting, well within the timeout."""
    server = make_server(topics=[AcmeTopic()], shutdown_timeout=2)
    await server.start(port=0)
    clients = [await WampTestClient.connect(url_of(server)) for _ in range(5)]
    clients[0].subscribe("acme/channel/1")
    loop = asyncio.get_running_loop()
    began = loop.time()
    await server.stop()
    assert loop.time() - began < 1.5
    assert [await c.wait_closed() for c in clients] == [1001] * 5
    assert server.connections == 0 and dict(server.topics) == {}
    with pytest.raises(OSError):
        await WampTestClient.connect(url_of(server), timeout=1)


SERVE = """
import asyncio
from gos_web_socket.app.demo import AcmeTopic
from gos_web_socket.app.events import SERVER_LAUNCHED, EventDispatcher
from tests.support.server import RUNTIME, make_container, service

dispatcher = EventDispatcher()
dispatcher.add_listener(SERVER_LAUNCHED, lambda event: print(event.server.port, flush=True))
container = make_container(topics=[AcmeTopic()], dispatcher=dispatcher, port={port})
asyncio.run(service(container, RUNTIME).run())
"""


async def test_run_stops_on_sigterm() -> None:
    """The runtime's run() serves until SIGTERM, then closes clients with 1001 and exits 0."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SERVE.format(port=free_port()),
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert process.stdout is not None
    port = int(await asyncio.wait_for(process.stdout.readline(), 10))
    client = await WampTestClient.connect(f"ws://127.0.0.1:{port}/")
    process.send_signal(signal.SIGTERM)
    assert await client.wait_closed() == 1001
    assert await asyncio.wait_for(process.wait(), 10) == 0


async def test_stop_without_start_is_harmless() -> None:
    """stop() on a server that never started returns at once."""
    server: WampServer = make_server()
    await server.stop()
    assert server.connections == 0
