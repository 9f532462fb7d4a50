"""The JSON publish API and the ``http`` pusher: a push over HTTP, on a push's event path."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from gos_web_socket.app.events import PUSH_FAIL, PUSH_SUCCESS, Event
from gos_web_socket.app.exceptions import PushFailed
from gos_web_socket.app.server import WampServer
from gos_web_socket.app.sse.pusher import HttpPusher
from gos_web_socket.app.sse.relay import MercureRelay
from gos_web_socket.app.testing import WampTestClient
from gos_web_socket.settings.mercure import HttpPusherSettings
from tests.sse.conftest import hub_server, publish, subscribed
from tests.support.server import url_of
from tests.support.waiting import eventually

KEY = "k" * 32


def api(server: WampServer) -> str:
    return f"http://127.0.0.1:{server.port}/api/publish"


async def test_a_route_push_reaches_sse_and_wamp_and_answers_its_position() -> None:
    """``route`` + ``parameters`` + ``data`` with the API key: SSE and WAMP subscribers get
    it, the answer has the channel, the position and the SSE id; push_success fires."""
    events: list[tuple[str, Event]] = []
    async with hub_server({"api_keys": [KEY]}) as server:
        for name in (PUSH_SUCCESS, PUSH_FAIL):
            server.dispatcher.add_listener(name, lambda e, n=name: events.append((n, e)))
        async with subscribed(server, "topic=acme/channel/3") as reader:
            v1 = await WampTestClient.connect(url_of(server))
            try:
                v1.subscribe("acme/channel/3")
                await eventually(lambda: len(server.topics["acme/channel/3"]) == 2)
                body = {"route": "acme_topic", "parameters": {"room": "3"}, "data": {"a": 1}}
                async with httpx.AsyncClient() as client:
                    answer = await client.post(api(server), json=body, headers={"X-API-Key": KEY})
                assert answer.status_code == 200
                result = answer.json()
                assert result["channel"] == "acme/channel/3"
                (event,) = await reader.wait(1)
                assert event.id == result["id"]
                position = result["position"]
                assert result["id"] == f"urn:gos:{position['epoch']}-{position['offset']}"
                assert await v1.next_event("acme/channel/3") == {"a": 1}
            finally:
                await v1.close()
        assert [n for n, _ in events] == [PUSH_SUCCESS]
        assert events[0][1].push_handler.name == "mercure"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({}, {"channel": "acme/channel/1", "data": 1}, 401),
        ({"X-API-Key": "x" * 32}, {"channel": "acme/channel/1", "data": 1}, 401),
        ({"X-API-Key": KEY}, {"channel": "acme/channel/1"}, 400),
        ({"X-API-Key": KEY}, {"route": "nope", "data": 1}, 400),
        ({"Authorization": f"apikey {KEY}"}, {"channel": "acme/channel/1", "data": 1}, 200),
    ],
)
async def test_the_api_refuses_what_it_cannot_take(
    headers: dict[str, str], body: dict[str, Any], status: int
) -> None:
    """A missing or wrong key is 401, a body without data or with an unknown route is 400."""
    async with hub_server({"api_keys": [KEY]}) as server, httpx.AsyncClient() as client:
        answer = await client.post(api(server), json=body, headers=headers)
        assert answer.status_code == status, answer.text


async def test_the_http_pusher_pushes_sync_and_async() -> None:
    """``HttpPusher.push`` and ``push_sync`` (from a thread) reach an SSE subscriber; a
    server that refuses raises PushFailed."""
    async with hub_server({"api_keys": [KEY]}) as server:
        settings = HttpPusherSettings(port=server.port, api_key=KEY)
        pusher = HttpPusher(server.router, settings)
        async with subscribed(server, "topic=acme/channel/9") as reader:
            await pusher.push({"n": 1}, "acme_topic", {"room": "9"})
            await asyncio.to_thread(pusher.push_sync, {"n": 2}, "acme_topic", {"room": "9"})
            assert [e.data for e in await reader.wait(2)] == ['{"n":1}', '{"n":2}']
        wrong = HttpPusher(server.router, HttpPusherSettings(port=server.port, api_key="w" * 32))
        with pytest.raises(PushFailed, match="401"):
            await wrong.push({"n": 3}, "acme_topic", {"room": "9"})
        await pusher.close()
        await wrong.close()


async def test_a_failing_push_answers_500_and_fires_push_fail() -> None:
    """A route whose topic handler is missing: the publish answers 500, push_fail fires."""
    routes = {"broken": {"pattern": "broken/{n}", "callback": "no.such.topic"}}
    failures: list[Event] = []
    async with hub_server({"api_keys": [KEY]}, routes=routes) as server:
        server.dispatcher.add_listener(PUSH_FAIL, failures.append)
        async with httpx.AsyncClient() as client:
            body = {"channel": "broken/1", "data": 1}
            answer = await client.post(api(server), json=body, headers={"X-API-Key": KEY})
        assert answer.status_code == 500
        assert len(failures) == 1


async def test_a_forward_to_an_unknown_pusher_answers_500() -> None:
    """``mercure.forward`` naming no enabled pusher: the publish answers 500."""
    async with hub_server({"api_keys": [KEY], "forward": "nowhere"}) as server:
        body = {"channel": "acme/channel/1", "data": 1}
        async with httpx.AsyncClient() as client:
            answer = await client.post(api(server), json=body, headers={"X-API-Key": KEY})
        assert answer.status_code == 500


class SlowRelay(MercureRelay):
    """``mercure.relay`` whose push takes 2 s (longer than the handshake timeout)."""

    async def on_push(self, topic: Any, request: Any, data: Any, provider: str) -> None:
        await asyncio.sleep(2)
        await super().on_push(topic, request, data, provider)


async def test_a_publish_slower_than_the_handshake_timeout_is_answered_once() -> None:
    """A 2 s publish with a 1 s handshake_timeout: answered 200 with its id, delivered once."""
    book = "https://example.com/books/1"
    async with (
        hub_server(topics=[SlowRelay()], limits={"handshake_timeout": 1}) as server,
        subscribed(server, f"topic={book}") as reader,
    ):
        answer = await publish(server, [("topic", book), ("data", "slow")])
        assert answer.status_code == 200
        await publish(server, [("topic", book), ("data", "sentinel")])
        events = await reader.wait(2)
        assert [e.data for e in events] == ["slow", "sentinel"]
        assert events[0].id == answer.text


async def test_the_api_answers_no_id_where_subscribers_see_a_per_broadcast_one() -> None:
    """On a route without history the SSE id is per broadcast (``#...``): the API answers
    ``"id": null`` rather than an id no subscriber saw."""
    channel = "https://example.com/nohistory/1"
    async with (
        hub_server({"api_keys": [KEY]}) as server,
        subscribed(server, f"topic={channel}") as reader,
    ):
        body = {"channel": channel, "data": {"a": 1}}
        async with httpx.AsyncClient() as client:
            answer = await client.post(api(server), json=body, headers={"X-API-Key": KEY})
        (event,) = await reader.wait(1)
        assert answer.json()["id"] is None and event.id is not None and event.id.startswith("#")
