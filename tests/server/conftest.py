"""Fixtures for the server tests: the demo server on a free port and a client factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from gos_web_socket.app.demo import AcmeRpc, AcmeTopic
from gos_web_socket.app.server import WampServer
from gos_web_socket.app.testing import WampTestClient
from tests.support.server import running_server, url_of

ClientFactory = Callable[..., Awaitable[WampTestClient]]


@pytest.fixture
async def demo_server() -> AsyncIterator[WampServer]:
    """The shipped demo (acme.topic, acme.rpc) on the default routes."""
    async with running_server(topics=[AcmeTopic()], rpcs=[AcmeRpc()]) as server:
        yield server


@pytest.fixture
async def connect(demo_server: WampServer) -> AsyncIterator[ClientFactory]:
    """Open clients to ``demo_server``; every one is closed at teardown."""
    clients: list[WampTestClient] = []

    async def open_client(**kwargs: Any) -> WampTestClient:
        client = await WampTestClient.connect(url_of(demo_server), **kwargs)
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        await client.close()
