"""The demo page and the browser client in headless Chromium, against a real server and pushers."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from tests.browser.conftest import CHANNEL, ROOM, Stack
from tests.support.waiting import eventually

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

README_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "demo.png"
PUSH_DEADLINE = 2.0  # seconds from push() to the event in the page


async def open_demo(page: Page, stack: Stack, subscribers: int = 1) -> None:
    """Load the page and wait until the server has it in the room."""
    await page.goto(stack.url)
    await wait_joined(page, stack, subscribers)


async def wait_joined(page: Page, stack: Stack, subscribers: int = 1) -> None:
    await page.wait_for_function(
        "document.getElementById('channel').dataset.subscribed === 'true'", timeout=10_000
    )
    await eventually(
        lambda: stack.subscribers() >= subscribers, what="server sees the page", every=0.01
    )


async def wait_for_event(page: Page, text: str, seconds: float) -> None:
    await page.wait_for_function(
        "text => document.getElementById('events').textContent.includes(text)",
        arg=text,
        timeout=seconds * 1000,
    )


async def push_and_see(stack: Stack, page: Page, transport: str, text: str) -> float:
    """Push through one pusher; returns the seconds until the page showed it."""
    started = time.monotonic()
    await stack.pusher(transport).push({"msg": text}, "acme_topic", {"room": ROOM})
    await wait_for_event(page, text, PUSH_DEADLINE - (time.monotonic() - started))
    return time.monotonic() - started


async def test_page_loads_connects_and_joins_the_room(stack: Stack, page: Page) -> None:
    """The page finds the server through /config.js, connects and subscribes to room lobby,
    the one the README pushes to."""
    await open_demo(page, stack)
    assert await page.text_content("#state") == "connected"
    ws_url = f"ws://127.0.0.1:{stack.server.port}/"
    assert await page.text_content("#endpoint") == f"WebSocket server: {ws_url}"
    assert await page.text_content("#channel") == CHANNEL
    assert await page.evaluate("window.gosSocket.channels()") == [CHANNEL]
    assert stack.subscribers() == 1
    assert page.errors == []  # type: ignore[attr-defined]


async def test_push_through_each_pusher_shows_within_two_seconds(
    pusher_stack: tuple[Stack, str], page: Page
) -> None:
    """A backend push reaches the page live, whatever the transport."""
    stack, transport = pusher_stack
    await open_demo(page, stack)
    text = f"{transport} push {uuid.uuid4().hex}"
    elapsed = await push_and_see(stack, page, transport, text)
    assert elapsed < PUSH_DEADLINE
    assert await page.text_content("#event-count") == "1"
    payload = f'{CHANNEL} {{"msg":"{text}"}}'
    assert await page.text_content("#events li:first-child code") == payload


async def test_publish_from_the_page_reaches_everyone_in_the_room(
    stack: Stack, browser: Browser, page: Page
) -> None:
    """Publishing from one page shows on another page in the room (and on the publisher's)."""
    other = await browser.new_page()
    await open_demo(page, stack)
    await open_demo(other, stack, subscribers=2)
    await page.fill("#message", "hello from page one")
    await page.click("#publish-form button")
    await wait_for_event(other, "hello from page one", PUSH_DEADLINE)
    await wait_for_event(page, "hello from page one", PUSH_DEADLINE)
    await other.close()


async def test_joining_another_room_leaves_the_first(stack: Stack, page: Page) -> None:
    """Join unsubscribes the old channel, so the old room's pushes stop arriving."""
    await open_demo(page, stack)
    await page.fill("#room", "orders")
    await page.click("#join-form button")
    await eventually(
        lambda: stack.subscribers("acme/channel/orders") == 1, what="joined orders", every=0.01
    )
    await eventually(lambda: stack.subscribers() == 0, what="left room lobby", every=0.01)
    assert await page.evaluate("window.gosSocket.channels()") == ["acme/channel/orders"]
    await stack.pusher("zmq").push({"msg": "for orders"}, "acme_topic", {"room": "orders"})
    await wait_for_event(page, "for orders", PUSH_DEADLINE)


async def test_rpc_sum_shows_the_result_and_errors(stack: Stack, page: Page) -> None:
    """The Sum button calls acme/rpc/sum; a CALLERROR shows its description."""
    await open_demo(page, stack)
    await page.fill("#numbers", "1 2 3.5")
    await page.click("#rpc-form button")
    await page.wait_for_function("document.getElementById('rpc-result').dataset.status === 'ok'")
    assert await page.text_content("#rpc-result") == "6.5"
    await page.fill("#numbers", "1 two")
    await page.click("#rpc-form button")
    await page.wait_for_function("document.getElementById('rpc-result').dataset.status === 'error'")
    assert await page.text_content("#rpc-result") == "error: sum takes numbers only"


async def test_client_api_promises_errors_and_publish_options(stack: Stack, page: Page) -> None:
    """GosSocket throws while disconnected, rejects with {uri, desc, details}, honours excludeMe."""
    await open_demo(page, stack)
    result = await page.evaluate(
        """async (url) => {
        const { GosSocket, CONNECTION_CLOSED } = await import("/gos-websocket.js");
        const out = {};
        const socket = new GosSocket(url, { retryDelay: 100 });
        try { socket.rpcCall("acme/rpc/sum", [1]); } catch (e) { out.thrown = e.message; }
        const connected = new Promise((resolve) => socket.on("socket/connect", resolve));
        socket.open();
        out.session = (await connected) === socket && socket.isConnected();
        out.sum = await socket.rpcCall("acme/rpc/sum", [2, 3]);
        out.raw = await socket.rpcCall("acme/rpc/sum", [2, 3], { raw: true });
        out.echo = await socket.rpcCall("acme/rpc/echo", { a: [1, 2] });
        out.error = await socket.rpcCall("acme/rpc/sum", ["x"]).catch((e) => e);
        const seen = [];
        socket.subscribeToChannel("acme/channel/lobby", (uri, payload) => seen.push(payload.msg));
        socket.subscribeToChannel("acme/channel/lobby", (uri, payload) => seen.push(payload.msg));
        socket.publishToTopic("acme/channel/lobby", { msg: "not for me" }, { excludeMe: true });
        socket.publishToTopic("acme/channel/lobby", { msg: "for all" });
        await new Promise((resolve) => {
            const check = () => (seen.includes("for all") ? resolve() : setTimeout(check, 10));
            check();
        });
        out.seen = seen;
        const closed = new Promise((resolve) => socket.on("socket/disconnect", resolve));
        socket.close();
        out.closeCode = (await closed).code === CONNECTION_CLOSED;
        return out;
    }""",
        f"ws://127.0.0.1:{stack.server.port}/",
    )
    assert result["thrown"] == "GosSocket is not connected"
    assert result["session"] is True
    assert result["sum"] == 5  # what the handler returned, not GOS's wire [5]
    assert result["raw"] == [5]
    assert result["echo"] == {"a": [1, 2]}
    assert result["error"]["uri"] == "acme/rpc/sum"
    assert result["error"]["desc"] == "sum takes numbers only"
    assert result["error"]["details"]["code"] == 400
    assert result["seen"] == ["for all", "for all"]  # two distinct callbacks; excluded: none
    assert result["closeCode"] is True
    await wait_for_event(page, "not for me", PUSH_DEADLINE)  # the page's own socket got both


async def test_client_prefixes_and_eligible_lists(stack: Stack, page: Page) -> None:
    """CURIEs resolve as the server resolves them; eligible and exclude pick the receivers."""
    await open_demo(page, stack)
    result = await page.evaluate(
        """async (url) => {
        const { connect } = await import("/gos-websocket.js");
        const socket = connect(url, { retryDelay: 100 });
        await new Promise((resolve) => socket.on("socket/connect", resolve));
        socket.prefix("room", "acme/channel/");
        socket.prefix("calc", "acme/rpc/");
        const out = { resolved: socket.resolve("room:lobby") };
        out.untouched = socket.resolve("ws://x:1/");
        out.sum = await socket.rpcCall("calc:sum", [4, 5]);
        const seen = [];
        socket.subscribeToChannel("room:lobby", (uri, payload) => seen.push([uri, payload.msg]));
        const page = window.gosSocket.sessionId;
        socket.publishToTopic("room:lobby", { msg: "page only" }, { eligible: [page] });
        socket.publishToTopic("room:lobby", { msg: "all but page" }, { exclude: [page] });
        await new Promise((resolve) => {
            const check = () => (seen.length ? resolve() : setTimeout(check, 10));
            check();
        });
        out.seen = seen;
        socket.close();
        return out;
    }""",
        f"ws://127.0.0.1:{stack.server.port}/",
    )
    assert result["resolved"] == CHANNEL
    assert result["untouched"] == "ws://x:1/"
    assert result["sum"] == 9
    assert result["seen"] == [[CHANNEL, "all but page"]]
    await wait_for_event(page, "page only", PUSH_DEADLINE)
    assert "all but page" not in (await page.text_content("#events") or "")


async def test_client_backs_off_then_gives_up(stack: Stack, page: Page, unused_port: int) -> None:
    """Retries wait retryDelay * backoffFactor**n, then socket/disconnect says retries exceeded."""
    await page.goto(stack.url)
    events = await page.evaluate(
        """async (url) => {
        const { GosSocket } = await import("/gos-websocket.js");
        const socket = GosSocket.connect(url, { retryDelay: 50, maxRetries: 2 });
        const events = [];
        await new Promise((resolve) => socket.on("socket/disconnect", (e) => {
            events.push([e.code, e.delay ?? null]);
            if (e.code === 2) resolve();
        }));
        return events;
    }""",
        f"ws://127.0.0.1:{unused_port}/",
    )
    assert events == [[5, 50], [5, 100], [2, None]]


async def test_page_recovers_after_a_server_restart(full_stack: Stack, page: Page) -> None:
    """Stop + start on the same port: the page shows the outage, reconnects, receives again."""
    stack = full_stack
    await open_demo(page, stack)
    await push_and_see(stack, page, "zmq", "before the restart")
    await stack.stop()
    await page.wait_for_function(
        "document.getElementById('connection').dataset.state !== 'connected'"
    )
    assert (await page.text_content("#state") or "").startswith("reconnecting")
    await stack.start()
    await wait_joined(page, stack)
    assert await page.text_content("#state") == "connected"
    for transport in ("amqp", "zmq", "wamp"):
        elapsed = await push_and_see(stack, page, transport, f"{transport} after the restart")
        assert elapsed < PUSH_DEADLINE


async def test_screenshot_of_the_demo_page(full_stack: Stack, page: Page, tmp_path: Path) -> None:
    """A populated demo page: a publish, a push per pusher, an RPC result.

    ``GOS_UPDATE_SCREENSHOT=1`` writes it to docs/demo.png for the README; by default it goes
    to a temp dir so a test run leaves the tree clean.
    """
    update = os.environ.get("GOS_UPDATE_SCREENSHOT") == "1"
    shot = README_SCREENSHOT if update else tmp_path / "demo.png"
    stack = full_stack
    await open_demo(page, stack)
    await page.fill("#message", "Hello from the browser")
    await page.click("#publish-form button")
    await wait_for_event(page, "Hello from the browser", PUSH_DEADLINE)
    for transport, text in [
        ("amqp", "Order #1042 shipped (AMQP pusher)"),
        ("zmq", "New comment on ticket 7 (ZeroMQ pusher)"),
        ("wamp", "Deploy finished (WAMP pusher)"),
    ]:
        await push_and_see(stack, page, transport, text)
    await page.click("#rpc-form button")
    await page.wait_for_function("document.getElementById('rpc-result').dataset.status === 'ok'")
    shot.parent.mkdir(exist_ok=True)
    await page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes().startswith(b"\x89PNG")
    assert shot.stat().st_size > 10_000


async def test_the_page_fits_a_phone_without_sideways_scrolling(
    browser: Browser, stack: Stack
) -> None:
    """At 375 px and 320 px wide the connected page, with an event, has no horizontal scroll."""
    for width in (375, 320):
        context = await browser.new_context(viewport={"width": width, "height": 700})
        page = await context.new_page()
        try:
            await open_demo(page, stack)
            await push_and_see(stack, page, "zmq", "a push on a phone " + "x" * 60)
            fits = await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            widths = await page.evaluate(
                "[document.documentElement.scrollWidth, window.innerWidth]"
            )
            assert fits, f"{width} px viewport: scrollWidth, innerWidth = {widths}"
        finally:
            await context.close()
