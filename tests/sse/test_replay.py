"""Reconnecting with Last-Event-ID: what was missed is replayed from history, in order, once;
an id history no longer has is answered ``earliest``."""

from __future__ import annotations

import asyncio

import httpx

from gos_web_socket.app.sse.wire import parse_position
from tests.sse.conftest import HUB, PUBLISHER, hub_server, publish, subscribed

BOOK = "https://example.com/books/1"


async def publish_many(server: object, count: int, prefix: str, given_ids: bool) -> list[str]:
    """``count`` updates to BOOK over one client; returns their ids."""
    ids = []
    headers = {
        "Authorization": f"Bearer {PUBLISHER}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    url = f"http://127.0.0.1:{server.port}{HUB}"  # type: ignore[attr-defined]
    async with httpx.AsyncClient(timeout=10.0) as client:
        for n in range(count):
            body = f"topic={BOOK}&data={prefix}{n}"
            if given_ids:
                body += f"&id={prefix}-id-{n}"
            answer = await client.post(url, content=body, headers=headers)
            assert answer.status_code == 200, answer.text
            ids.append(answer.text)
    return ids


async def test_500_missed_updates_are_replayed_in_order_once() -> None:
    """After 500 missed updates (publisher ids and hub ids mixed), a reconnect with the last
    seen id gets all 500 in order, then live ones published meanwhile, nothing twice."""
    async with hub_server() as server:
        async with subscribed(server, f"topic={BOOK}") as reader:
            (seen,) = await publish_many(server, 1, "seen", given_ids=True)
            (event,) = await reader.wait(1)
            assert event.id == seen == "seen-id-0"
        missed = await publish_many(server, 250, "a", given_ids=False)
        missed += await publish_many(server, 250, "b", given_ids=True)
        live = asyncio.create_task(publish_many(server, 20, "live", given_ids=False))
        async with subscribed(server, f"topic={BOOK}", {"Last-Event-ID": seen}) as reader:
            assert reader.response.headers["last-event-id"] == seen
            assert reader.response.headers["mercure-last-event-id"] == seen
            live_ids = await live
            await reader.wait(520, timeout=30)
            (sentinel,) = await publish_many(server, 1, "sentinel", given_ids=False)
            events = await reader.wait(521, timeout=30)
            assert events[520].id == sentinel  # nothing twice before it
            events = events[:520]
        ids = [e.id for e in events]
        assert ids[:500] == missed
        assert sorted(ids[500:]) == sorted(live_ids) and len(set(ids)) == 520
        assert [e.data for e in events[:2]] == ["a0", "a1"]


async def test_the_query_parameter_works_as_the_header() -> None:
    """``lastEventID`` in the query (0.x, what EventSource cannot put in a header)."""
    async with hub_server() as server:
        (first, *rest) = await publish_many(server, 3, "q", given_ids=False)
        async with subscribed(server, f"topic={BOOK}&lastEventID={first}") as reader:
            assert [e.id for e in await reader.wait(2)] == rest


async def test_an_id_older_than_history_is_answered_earliest() -> None:
    """An id history no longer holds (or never knew) is answered ``earliest`` in the
    Last-Event-ID response headers, and what history still has is replayed."""
    routes = {
        "books": {
            "pattern": "https://example.com/books/{id}",
            "callback": "mercure.relay",
            "history": {"size": 5},
        }
    }
    async with hub_server(routes=routes) as server:
        ids = await publish_many(server, 10, "o", given_ids=False)
        async with subscribed(server, f"topic={BOOK}", {"Last-Event-ID": ids[0]}) as reader:
            assert reader.response.headers["last-event-id"] == "earliest"
            assert reader.response.headers["mercure-last-event-id"] == "earliest"
            assert [e.id for e in await reader.wait(5)] == ids[5:]
        async with subscribed(server, f"topic={BOOK}", {"Last-Event-ID": "never-seen"}) as r:
            assert r.response.headers["last-event-id"] == "earliest"


async def test_a_template_with_a_cursor_is_answered_earliest() -> None:
    """A template or ``*`` replays nothing, so a cursor with one is answered ``earliest``."""
    async with hub_server() as server:
        (first,) = await publish_many(server, 1, "t", given_ids=False)
        query = "topic=https://example.com/books/{id}"
        async with subscribed(server, query, {"Last-Event-ID": first}) as reader:
            assert reader.response.headers["last-event-id"] == "earliest"


async def test_a_publisher_id_shaped_like_a_position_is_its_own_update() -> None:
    """``order-17`` is a publisher's id, never read as a position (hub ids start ``urn:gos:``,
    which publishers may not use): a reconnect from it, forgotten by the id map
    (``ids_kept`` 1), replays what came after it from history."""
    assert parse_position("order-17") is None
    async with hub_server({"ids_kept": 1}) as server:
        first = [("topic", BOOK), ("data", "first"), ("id", "order-17")]
        assert (await publish(server, first)).text == "order-17"
        refused = await publish(server, [("topic", BOOK), ("id", "urn:gos:x-1")])
        assert refused.status_code == 400
        after = await publish_many(server, 2, "after", given_ids=True)
        async with subscribed(server, f"topic={BOOK}", {"Last-Event-ID": "order-17"}) as reader:
            assert reader.response.headers["last-event-id"] == "order-17"
            assert [e.id for e in await reader.wait(2)] == after
