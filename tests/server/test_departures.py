"""A mass drop over real sockets: departures are spread over loop turns, so a push to those who
stay goes out while the gone clients are still being taken out of the topic, and every one of
them still leaves, with its ``client_disconnected``."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvloop

from gos_web_socket.app.events import CLIENT_DISCONNECTED, EventDispatcher
from gos_web_socket.app.router import WampRequest
from gos_web_socket.app.server import Topic, TopicHandler, WampConnection, WampServer
from gos_web_socket.app.testing import WampTestClient
from tests.support.raw_ws import masked_frame, php_upgrade_request
from tests.support.server import running_server, url_of
from tests.support.waiting import eventually

ROUTES = {"news": {"pattern": "news/{id}", "callback": "news"}}
CROWD = 200


class News(TopicHandler):
    """A topic whose clients only listen."""

    name = "news"

    async def on_subscribe(
        self, connection: WampConnection, topic: Topic, request: WampRequest
    ) -> None:
        pass


async def raw_subscriber(port: int) -> asyncio.StreamWriter:
    """A bare WAMP v1 client subscribed to news/1 (cheap enough for a crowd)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(php_upgrade_request("127.0.0.1", port))
    await reader.readuntil(b"\r\n\r\n")
    writer.write(masked_frame(json.dumps([5, "news/1"]).encode()))
    await writer.drain()
    return writer


@pytest.fixture
def gone() -> tuple[EventDispatcher, list[Any]]:
    """A dispatcher recording ``client_disconnected`` events."""
    dispatcher = EventDispatcher()
    seen: list[Any] = []
    dispatcher.add_listener(CLIENT_DISCONNECTED, seen.append)
    return dispatcher, seen


@pytest.fixture
async def server(gone: tuple[EventDispatcher, list[Any]]) -> AsyncIterator[WampServer]:
    async with running_server(
        topics=[News()], routes=ROUTES, dispatcher=gone[0], limits={"departures_per_turn": 2}
    ) as running:
        yield running


async def test_a_push_after_a_mass_drop_does_not_wait_for_every_departure(
    server: WampServer, gone: tuple[EventDispatcher, list[Any]]
) -> None:
    """200 clients drop at once: the push sent at the first departure reaches the client who
    stayed before the 200th has left; then all 200 have left and were announced."""
    stays = await WampTestClient.connect(url_of(server))
    stays.subscribe("news/1")
    crowd = [await raw_subscriber(server.port) for _ in range(CROWD)]
    await eventually(lambda: len(server.topics.get("news/1") or ()) == CROWD + 1, what="all in")
    seen = gone[1]
    pushed_at: list[int] = []

    def push_at_first_departure(event: Any) -> None:
        if not pushed_at:
            pushed_at.append(len(seen))
            server.topics["news/1"].broadcast("after the drop")

    gone[0].add_listener(CLIENT_DISCONNECTED, push_at_first_departure)
    for writer in crowd:
        writer.transport.abort()
    assert await stays.next_event("news/1") == "after the drop"
    departed_when_received = len(seen)
    await eventually(lambda: len(seen) == CROWD, what="every departure announced")
    assert pushed_at == [1]
    assert departed_when_received < CROWD
    assert len(server.topics["news/1"]) == 1
    await stays.close()


def test_a_lost_connection_waiting_for_its_teardown_is_written_to_and_failed_by_nobody(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """On uvloop, whose closed transports refuse writes: a connection lost while its teardown
    waits behind 1.5 s of other departures sends no keepalive ping (every 1 s) and no close
    frame, a late ``fail()`` counts nothing, and once its turn comes it is gone."""
    caplog.set_level(logging.WARNING)
    errors: list[dict[str, Any]] = []

    async def scenario() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: errors.append(ctx))
        settings = {"keepalive_ping": True, "keepalive_interval": 1}
        limits = {"departures_per_turn": 1}
        async with running_server(
            topics=[News()], routes=ROUTES, limits=limits, **settings
        ) as server:
            writer = await raw_subscriber(server.port)
            await eventually(lambda: server.connections == 1, what="the client in")
            (connection,) = server.live_connections
            departures = connection.factory.lifecycle.departures
            for _ in range(1500):  # one a turn: the queue holds the teardown back about 1.5 s
                departures.call(time.sleep, 0.001)
            writer.transport.abort()
            await eventually(lambda: connection.lost, what="the connection lost")
            closed = dict(server.stats.closed)
            connection.fail("a job failing after the client left")
            connection.close()
            assert not connection.closed and departures.waiting > 1000  # still in the window
            await eventually(lambda: connection.closed, within=30, what="its turn")
            assert server.connections == 0
            assert dict(server.stats.closed) == closed

    uvloop.run(scenario())
    assert errors == []
    assert [r.getMessage() for r in caplog.records if "closed" in r.getMessage()] == []
