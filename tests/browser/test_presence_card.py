"""The demo page's presence card in Chromium: the shipped client watching a room's members live."""

from __future__ import annotations

from playwright.async_api import Page

from tests.browser.conftest import Stack
from tests.support.waiting import eventually

ROOM = "acme/room/lobby"
MEMBERS = "[...document.querySelectorAll('#members li')].map((li) => li.dataset.user)"


async def shows(page: Page, users: list[str]) -> None:
    """Wait until the card lists exactly ``users`` (diffs come once per window: 1 s)."""
    await page.wait_for_function(
        f"want => JSON.stringify({MEMBERS}) === JSON.stringify(want)", arg=users, timeout=10_000
    )


async def test_presence_card_shows_users_come_and_go(demo_stack: Stack, page: Page) -> None:
    """Users 42 and 43 (demo tokens) enter the presence room and leave it; the card lists each
    as they come and drops each as they go, and gos/presence answers the same."""
    await page.goto(demo_stack.url)
    for user in ("42", "43"):
        await eventually(
            lambda u=user: demo_stack.subscribers(f"acme/user/{u}") == 1, what=user, every=0.01
        )
    await page.wait_for_function("document.getElementById('presence-card').dataset.watching")
    await eventually(
        lambda: demo_stack.subscribers(f"gos/presence/{ROOM}") == 1, what="watch", every=0.01
    )
    await shows(page, [])
    presence = demo_stack.service("gos_web_socket.presence")
    await page.click('.user[data-user="42"] button.enter')
    await shows(page, ["42"])
    await page.click('.user[data-user="43"] button.enter')
    await shows(page, ["42", "43"])
    assert await page.text_content("#member-count") == "2"
    assert presence.counts(ROOM) == (2, 2)
    await page.click('.user[data-user="42"] button.enter')
    await shows(page, ["43"])
    await page.click("#presence-refresh")
    await page.wait_for_function("document.getElementById('presence-clients').textContent === '1'")
    await page.click('.user[data-user="43"] button.enter')
    await shows(page, [])
    assert await page.text_content("#member-count") == "0"
    assert page.errors == []  # type: ignore[attr-defined]
