"""The shipped browser client (gos-websocket.js) recovers by itself in headless Chromium."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Page

from gos_web_socket import containers
from gos_web_socket.app.demo import AcmeTopic
from gos_web_socket.testing import memory_pusher, use_memory_pusher
from tests.streams.recovery import ROUTES
from tests.support.rabbitmq import free_port
from tests.support.server import make_container, service
from tests.support.waiting import eventually

CHANNEL = "acme/channel/1"


@pytest.fixture
async def server() -> AsyncIterator[containers.Container]:
    """The demo topic on routes with history, the HTTP listener serving the client."""
    container = make_container(
        topics=[AcmeTopic()], routes=ROUTES, http={"enabled": True, "port": free_port()}
    )
    use_memory_pusher(container)
    async with service(container, "gos_web_socket.runtime"):
        yield container


async def push(container: containers.Container, start: int, stop: int) -> None:
    pusher = memory_pusher(container)
    for n in range(start, stop):
        await pusher.push({"n": n}, "acme_topic", {"room": "1"})


async def test_the_browser_client_recovers_what_it_missed_while_away(
    server: containers.Container, page: Page
) -> None:
    """Cut off while 200 pushes go out, the page reconnects on its own and its callback gets
    all 200 in order, none twice, then live ones; socket/recovery says recovered."""
    ws = service(server, "gos_web_socket.server")
    http = service(server, "gos_web_socket.http")
    await page.goto(f"http://127.0.0.1:{http.port}/gos-websocket.js")
    await page.evaluate(
        """async ([url, channel]) => {
        const { GosSocket } = await import("/gos-websocket.js");
        window.seen = [];
        window.recoveries = [];
        const socket = new GosSocket(url, { retryDelay: 1500 });
        window.socket = socket;
        socket.on("socket/recovery", (info) => window.recoveries.push(info));
        socket.on("socket/connect", () => {
            if (socket.channels().length === 0) {
                socket.subscribeToChannel(channel, (uri, payload) => window.seen.push(payload.n));
            }
        });
        socket.open();
    }""",
        [f"ws://127.0.0.1:{ws.port}/", CHANNEL],
    )
    await page.wait_for_function("window.socket.position('acme/channel/1') !== null")
    assert await page.evaluate("window.socket.protocol") == "wamp.2.json"
    await push(server, 0, 5)
    await page.wait_for_function("window.seen.length === 5")
    for connection in ws.live_connections:
        connection.close(1001, "going away")
    await eventually(lambda: not ws.live_connections, what="the page is cut off")
    await push(server, 5, 205)
    await page.wait_for_function("window.recoveries.length === 1", timeout=10_000)
    await push(server, 205, 210)
    await page.wait_for_function("window.seen.length >= 210", timeout=10_000)
    seen: list[int] = await page.evaluate("window.seen")
    recoveries: list[dict[str, Any]] = await page.evaluate("window.recoveries")
    assert seen == list(range(210))
    assert recoveries[0]["recovered"] is True and recoveries[0]["replayed"] == 200
    errors = [e for e in page.errors if "Failed to load resource" not in e]  # type: ignore[attr-defined]
    assert errors == []  # the favicon's 404 aside
