"""The browser client with a token: Chromium, the real stack, a token that expires mid-session."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator

import jwt
import pytest
from playwright.async_api import Page

from gos_web_socket.settings.auth import AuthenticationSettings
from tests.browser.conftest import Stack, stack_settings
from tests.support.waiting import eventually

MINE = "acme/user/42"
SECRET = secrets.token_urlsafe(48)


@pytest.fixture
async def auth_stack() -> AsyncIterator[Stack]:
    """The container's stack with ``allow_anonymous: false`` and an HS256 JWT provider."""
    settings = stack_settings(None)
    jwt_node = {"enabled": True, "algorithms": ["HS256"], "secret": SECRET}
    auth = AuthenticationSettings(allow_anonymous=False, providers={"jwt": jwt_node})
    running = Stack(settings.model_copy(update={"authentication": auth}))
    await running.start()
    yield running
    await running.close()


async def test_expired_token_is_refreshed_and_pushes_arrive_again(
    auth_stack: Stack, page: Page
) -> None:
    """GosSocket asks getToken() for a token, is closed with 4001 when it expires, asks again,
    reconnects, re-subscribes to acme/user/42 and receives the next private push."""
    issued: list[int] = []

    def next_token() -> str:
        lifetime = 2 if not issued else 3600  # the first token expires mid-session
        issued.append(lifetime)
        claims = {"sub": "42", "exp": int(time.time()) + lifetime}
        return jwt.encode(claims, SECRET, algorithm="HS256")

    await page.expose_function("nextToken", next_token)
    await page.goto(auth_stack.url + "gos-websocket.js")
    await page.evaluate(
        """async ([url, channel]) => {
        const { GosSocket } = await import("/gos-websocket.js");
        window.seen = [];
        window.reasons = [];
        const socket = new GosSocket(url, { retryDelay: 100, getToken: () => window.nextToken() });
        socket.on("socket/disconnect", (info) => window.reasons.push(info.reason));
        socket.on("socket/connect", () => {
            if (socket.channels().length === 0) {
                socket.subscribeToChannel(channel, (uri, payload) => window.seen.push(payload.n));
            }
        });
        socket.open();
    }""",
        [f"ws://127.0.0.1:{auth_stack.server.port}/", MINE],
    )
    zmq = auth_stack.pusher("zmq")
    await eventually(
        lambda: auth_stack.subscribers(MINE) == 1, what="subscribed as user 42", every=0.01
    )
    await zmq.push({"n": 1}, "acme_user", {"user_id": "42"})
    await page.wait_for_function("window.seen.length === 1", timeout=5000)

    def subscriber_ids() -> list[str]:
        topic = auth_stack.server.topics.get(MINE)
        return [c.session_id for c in topic] if topic is not None else []

    (first,) = subscriber_ids()
    await page.wait_for_function("window.reasons.includes('token expired')", timeout=6000)
    await eventually(
        lambda: len(issued) == 2 and len(ids := subscriber_ids()) == 1 and ids != [first],
        within=8,
        what="re-subscribed on a new connection with a fresh token",
        every=0.01,
    )
    await zmq.push({"n": 2}, "acme_user", {"user_id": "42"})
    await page.wait_for_function("window.seen.length === 2", timeout=5000)
    assert await page.evaluate("window.seen") == [1, 2]
    assert issued == [2, 3600]
    assert auth_stack.server.authenticator.expired == 1


async def test_demo_page_shows_two_users_with_their_own_pushes(
    demo_stack: Stack, page: Page
) -> None:
    """With demo tokens, the page connects users 42 and 43 side by side; the push button of
    each reaches that user's column alone, and the anonymous room still works."""
    await page.goto(demo_stack.url)
    for user in ("42", "43"):
        await eventually(
            lambda u=user: demo_stack.subscribers(f"acme/user/{u}") == 1, what=user, every=0.01
        )
    await page.click('.user[data-user="42"] button')
    await page.wait_for_function(
        "document.querySelectorAll('.user[data-user=\"42\"] li').length === 1"
    )
    await page.click('.user[data-user="43"] button')
    await page.wait_for_function(
        "document.querySelectorAll('.user[data-user=\"43\"] li').length === 1"
    )
    texts = await page.evaluate(
        """() => Object.fromEntries(["42", "43"].map((u) => [u,
            [...document.querySelectorAll(`.user[data-user="${u}"] li`)]
                .map((li) => li.textContent)]))"""
    )
    assert texts == {"42": ['{"msg":"hello 42","to":"42"}'], "43": ['{"msg":"hello 43","to":"43"}']}
    users = {c.user.id for c in demo_stack.server.live_connections}
    assert users == {"42", "43", None}  # the room's socket is anonymous
    assert page.errors == []  # type: ignore[attr-defined]


async def test_demo_page_without_demo_tokens_hides_private_channels(
    auth_stack: Stack, page: Page
) -> None:
    """Without demo tokens there is no /demo/token and the private card stays hidden."""
    await page.goto(auth_stack.url + "demo/mode")
    assert await page.evaluate("JSON.parse(document.body.innerText)") == {"demo_tokens": False}
    response = await page.goto(auth_stack.url + "demo/token?user=42")
    assert response is not None and response.status == 404
