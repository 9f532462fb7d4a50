"""A connection whose departure is done is freed by reference counting: nothing of it waits for
the garbage collector's full scan (which holds the loop for as long as it scans every
connection: app/gc_pacer.py)."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from gos_web_socket.app.demo.handlers import AcmeTopic
from gos_web_socket.app.server import WampConnection, WampServer
from gos_web_socket.app.testing import WampTestClient
from gos_web_socket.app.testing.wamp2 import V2Client
from tests.support.raw_ws import php_upgrade_request
from tests.support.server import running_server, url_of
from tests.support.waiting import eventually


@pytest.fixture
async def server() -> AsyncIterator[WampServer]:
    async with running_server(topics=[AcmeTopic()]) as running:
        yield running


async def freed_without_a_collection(
    server: WampServer, leave: Callable[[], Awaitable[None]]
) -> None:
    """With the collector off, the one connection is freed once ``leave`` made it go."""
    (connection,) = server.live_connections
    ref = weakref.ref(connection)
    del connection
    gc.disable()
    try:
        await leave()
        await eventually(lambda: server.connections == 0, what="the departure")
        await eventually(lambda: ref() is None, what="the connection freed by its refcount")
    finally:
        gc.enable()


async def test_a_wamp1_client_that_closes_cleanly_is_freed_at_once(server: WampServer) -> None:
    """A v1 client subscribed to a topic closes with a closing handshake: freed at once."""
    client = await WampTestClient.connect(url_of(server))
    client.subscribe("acme/channel/1")
    await eventually(lambda: server.connections == 1, what="the client in")
    await eventually(lambda: bool(server.topics.get("acme/channel/1")), what="the subscription")
    await freed_without_a_collection(server, client.close)


async def test_a_wamp1_client_that_vanishes_is_freed_at_once(server: WampServer) -> None:
    """A v1 client whose TCP connection is reset (no closing handshake): freed at once."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(php_upgrade_request("127.0.0.1", server.port))
    await reader.readuntil(b"\r\n\r\n")
    await eventually(lambda: server.connections == 1, what="the client in")

    async def vanish() -> None:
        writer.transport.abort()

    await freed_without_a_collection(server, vanish)


async def test_a_wamp2_session_that_leaves_is_freed_at_once(server: WampServer) -> None:
    """A v2 session joins, subscribes and leaves: its connection is freed at once."""
    client = await V2Client.join(url_of(server))
    await client.subscribe("acme/channel/1")
    await freed_without_a_collection(server, client.leave)


async def test_a_client_gone_before_its_handshake_is_freed_at_once(server: WampServer) -> None:
    """A TCP connection that sends half an upgrade request and goes: freed at once."""
    budget = server.listener.handshakes
    assert budget is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
    await eventually(lambda: budget.in_progress == 1, what="the handshake under way")
    (connection,) = [o for o in gc.get_objects() if isinstance(o, WampConnection)]
    ref = weakref.ref(connection)
    del connection
    gc.disable()
    try:
        writer.transport.abort()
        await eventually(lambda: budget.in_progress == 0, what="the handshake over")
        await eventually(lambda: ref() is None, what="the connection freed by its refcount")
    finally:
        gc.enable()
