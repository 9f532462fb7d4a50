"""Fixtures for the WAMP v2 tests: the demo server and autobahn-python sessions joined to it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pytest
from autobahn.wamp.request import Subscription
from autobahn.wamp.types import EventDetails, SubscribeOptions

from gos_web_socket.app.demo import AcmeRpc, AcmeTopic
from gos_web_socket.app.server import WampServer
from gos_web_socket.app.testing import V2Client
from tests.support.server import running_server, url_of

Joiner = Callable[..., Awaitable[V2Client]]
Events = asyncio.Queue[tuple[tuple[Any, ...], EventDetails]]
"""What a subscription received: each event's arguments and its details."""
T = TypeVar("T")


async def subscribe_events(
    client: V2Client, uri: str, match: str = "exact"
) -> tuple[Events, Subscription]:
    """Subscribe with ``match``; the events with their details, and the subscription."""
    queue: Events = asyncio.Queue()

    def handler(*args: Any, details: EventDetails) -> None:
        queue.put_nowait((args, details))

    options = SubscribeOptions(match=match, details=True)
    return queue, await client.session.subscribe(handler, uri, options)


async def listen(client: V2Client, uri: str, match: str = "exact") -> Events:
    """Subscribe with ``match``; the events with their details."""
    return (await subscribe_events(client, uri, match))[0]


async def next_of(queue: asyncio.Queue[T], timeout: float = 5.0) -> T:  # noqa: ASYNC109
    """The next item of ``queue``, waited for up to ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        return await queue.get()


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
