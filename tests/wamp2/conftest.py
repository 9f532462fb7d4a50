"""Fixtures for the WAMP v2 tests: the demo server and autobahn-python sessions joined to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from gos_web_socket.app.demo import AcmeRpc, AcmeTopic
from gos_web_socket.app.server import WampServer
from gos_web_socket.app.testing import V2Client
from tests.support.server import running_server, url_of

Joiner = Callable[..., Awaitable[V2Client]]


@pytest.fixture
async def demo_server() -> AsyncIterator[WampServer]:
    """The shipped demo (acme.topic, acme.rpc) on the default routes and realm."""
    async with running_server(topics=[AcmeTopic()], rpcs=[AcmeRpc()]) as server:
        yield server


@pytest.fixture
async def join(demo_server: WampServer) -> AsyncIterator[Joiner]:
    """Join ``demo_server`` with autobahn-python; every session leaves at teardown."""
    clients: list[V2Client] = []

    async def open_session(**kwargs: Any) -> V2Client:
        client = await V2Client.join(url_of(demo_server), **kwargs)
        clients.append(client)
        return client

    yield open_session
    for client in clients:
        await client.leave()
