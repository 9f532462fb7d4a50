"""The server behind a real nginx (deploy/nginx.conf): ws:// and wss://, browser and WAMP
clients, /health, and the client address from X-Forwarded-For for ip_address_check."""

from __future__ import annotations

import asyncio
import json
import ssl
import urllib.request
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser

from gos_web_socket.app.testing import ConnectFailed, WampTestClient
from tests.browser.conftest import CHANNEL, ROOM, Stack, stack_settings
from tests.support.nginx import Nginx
from tests.support.waiting import eventually

BLOCKED = "127.0.0.5"  # loopback addresses the test connects from: nginx forwards them
ALLOWED = "127.0.0.6"


@pytest.fixture
async def proxied() -> AsyncIterator[tuple[Stack, Nginx]]:
    """The container's stack trusting nginx (127.0.0.1), with BLOCKED on the blocked list,
    and a private nginx in front of its WebSocket port."""
    settings = stack_settings(None)
    server = settings.server.model_copy(
        update={
            "ip_address_check": True,
            "blocked_ip_addresses": [BLOCKED],
            "trusted_proxies": ["127.0.0.1"],
        }
    )
    stack = Stack(settings.model_copy(update={"server": server}))
    nginx = Nginx(settings.server.port).start()
    try:
        await stack.start()
        yield stack, nginx
        await stack.close()
    finally:
        nginx.stop()


def client_tls(nginx: Nginx) -> ssl.SSLContext:
    """A client context that trusts only the test's self-signed certificate."""
    return ssl.create_default_context(cafile=str(nginx.certificate))


def addresses(stack: Stack) -> list[str]:
    return sorted(c.remote_address for c in stack.server.live_connections)


@pytest.mark.parametrize("scheme", ["ws", "wss"])
async def test_browser_receives_a_push_through_nginx(
    proxied: tuple[Stack, Nginx], browser: Browser, scheme: str
) -> None:
    """Chromium's GosSocket connects through nginx (ws:// or wss:// with a self-signed
    certificate), subscribes to room 42 and receives a ZeroMQ push."""
    stack, nginx = proxied
    context = await browser.new_context(ignore_https_errors=True)
    try:
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(stack.url + "gos-websocket.js")
        await page.evaluate(
            """async ([url, channel]) => {
            const { GosSocket } = await import("/gos-websocket.js");
            window.seen = [];
            const socket = new GosSocket(url, { retryDelay: 100 });
            socket.on("socket/connect", () =>
                socket.subscribeToChannel(channel, (uri, payload) => window.seen.push(payload)));
            socket.open();
        }""",
            [nginx.wss_url if scheme == "wss" else nginx.ws_url, CHANNEL],
        )
        await eventually(
            lambda: stack.subscribers() == 1, what="the browser subscribed", every=0.01
        )
        await stack.pusher("zmq").push({"via": scheme}, "acme_topic", {"room": ROOM})
        await page.wait_for_function("window.seen.length === 1", timeout=5000)
        assert await page.evaluate("window.seen") == [{"via": scheme}]
        assert addresses(stack) == ["127.0.0.1"]  # the browser's address, from X-Forwarded-For
        assert errors == []
    finally:
        await context.close()


@pytest.mark.parametrize("scheme", ["ws", "wss"])
async def test_wamp_client_receives_a_push_through_nginx(
    proxied: tuple[Stack, Nginx], scheme: str
) -> None:
    """A WAMP v1 client through nginx (wss:// verifying the self-signed certificate) gets
    WELCOME, subscribes and receives a push."""
    stack, nginx = proxied
    url = nginx.wss_url if scheme == "wss" else nginx.ws_url
    client = await WampTestClient.connect(url, ssl=client_tls(nginx), local_host=ALLOWED)
    try:
        client.subscribe(CHANNEL)
        await eventually(lambda: stack.subscribers() == 1, what="the client subscribed", every=0.01)
        await stack.pusher("zmq").push({"n": 1}, "acme_topic", {"room": ROOM})
        assert await client.next_event(CHANNEL) == {"n": 1}
        assert addresses(stack) == [ALLOWED]
    finally:
        await client.close()


async def test_health_through_nginx(proxied: tuple[Stack, Nginx]) -> None:
    """GET /health through nginx is answered by the WebSocket port: 200 and a JSON body."""
    _, nginx = proxied
    url = f"http://127.0.0.1:{nginx.http_port}/health"

    def fetch() -> tuple[int, object]:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310  # loopback
            return response.status, json.loads(response.read())

    status, body = await asyncio.to_thread(fetch)
    assert status == 200
    assert isinstance(body, dict) and body


async def test_blocked_forwarded_address_is_refused_behind_nginx(
    proxied: tuple[Stack, Nginx],
) -> None:
    """With ip_address_check on, a client whose forwarded address is blocked gets no WELCOME
    (403 through nginx); a client from another address connects."""
    stack, nginx = proxied
    with pytest.raises(ConnectFailed):
        await WampTestClient.connect(nginx.ws_url, local_host=BLOCKED)
    client = await WampTestClient.connect(nginx.ws_url, local_host=ALLOWED)
    try:
        assert addresses(stack) == [ALLOWED]
    finally:
        await client.close()


async def test_forged_forwarded_for_from_a_client_is_not_believed(
    proxied: tuple[Stack, Nginx],
) -> None:
    """A client (not a trusted proxy) naming a blocked address in its own X-Forwarded-For is
    still seen at its real address: nginx appends it, and the server reads the nearest hop."""
    stack, nginx = proxied
    headers = {"X-Forwarded-For": "198.51.100.7"}
    client = await WampTestClient.connect(nginx.ws_url, local_host=ALLOWED, headers=headers)
    try:
        assert addresses(stack) == [ALLOWED]
    finally:
        await client.close()
    headers = {"X-Forwarded-For": ALLOWED}
    with pytest.raises(ConnectFailed):
        await WampTestClient.connect(nginx.ws_url, local_host=BLOCKED, headers=headers)
