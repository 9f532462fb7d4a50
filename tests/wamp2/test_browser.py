"""autobahn-browser (WAMP v2) in Debian's Chromium against the server, driven by Playwright."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gos_web_socket.app.demo import AcmeRpc, AcmeTopic
from gos_web_socket.app.events import EventDispatcher
from gos_web_socket.app.message import Message
from gos_web_socket.app.router import Router, load_routes
from gos_web_socket.app.server import WampServer
from gos_web_socket.app.transports.memory import InMemoryServerPushHandler
from gos_web_socket.settings.models import DEFAULT_ROUTING
from tests.support.chromium import launch, require_chromium
from tests.support.server import running_server, url_of
from tests.support.waiting import eventually

try:
    from playwright.async_api import Page, async_playwright
except ImportError:  # fail in the fixture, with the fix, rather than a bare collection error
    async_playwright = None

HERE = Path(__file__).resolve().parent
PAGE = HERE / "autobahn_page.html"
AUTOBAHN_BROWSER = HERE.parent / "interop" / "node_modules" / "autobahn-browser"
CHANNEL = "acme/channel/lobby"
pytestmark = pytest.mark.npm  # autobahn-browser, besides Chromium


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium, Playwright and autobahn-browser; a missing one fails (never skips)."""
    chromium = require_chromium()
    if not AUTOBAHN_BROWSER.is_dir():
        pytest.fail("tests/interop/node_modules is missing: run make test (npm install)")
    return chromium


@pytest.fixture
async def page(chromium: Path) -> AsyncIterator[Page]:
    """The test page in headless Chromium."""
    async with async_playwright() as playwright:
        browser = await launch(playwright)
        page = await browser.new_page()
        await page.goto(PAGE.as_uri())
        yield page
        await browser.close()


@pytest.fixture
async def server() -> AsyncIterator[WampServer]:
    """The demo server with an in-memory push handler to push from the test."""
    dispatcher = EventDispatcher()
    memory = InMemoryServerPushHandler(Router(load_routes(DEFAULT_ROUTING)), dispatcher)
    async with running_server(
        topics=[AcmeTopic()], rpcs=[AcmeRpc()], push_handlers={"memory": memory}
    ) as server:
        yield server


async def test_autobahn_browser_in_chromium(page: Page, server: WampServer) -> None:
    """The page joins, gets a push, publishes acknowledged and calls acme/rpc/sum."""
    joined = await page.evaluate("([url, realm]) => start(url, realm)", [url_of(server), "realm1"])
    assert joined["realm"] == "realm1"
    assert joined["protocol"] == "wamp.2.json"  # autobahn-browser's first choice
    assert str(joined["session"]) in {c.session_id for c in server.live_connections}
    memory = server.push_handlers["memory"]
    assert isinstance(memory, InMemoryServerPushHandler)
    await memory.feed(Message(CHANNEL, {"msg": "to the browser"}).encode())
    event = await page.evaluate("() => nextEvent()")
    assert event["args"] == [{"msg": "to the browser"}]
    results = await page.evaluate("() => publishAndCall()")
    assert 1 <= results["publication"] <= 2**53
    assert results["own"]["args"] == [{"from": "browser"}]
    assert results["sum"] == 5
    assert results["callError"] == {
        "error": "wamp.error.invalid_argument",
        "args": ["sum takes numbers only"],
    }
    await page.evaluate("() => connection.close()")
    await eventually(lambda: server.connections == 0, what="the browser left")
