"""Subscribing over SSE on the server's port: headers, selectors, one push to every kind of
subscriber, heartbeats, CORS, refusals."""

from __future__ import annotations

import httpx

from gos_web_socket.app.sse.wire import position_id
from gos_web_socket.app.testing import V2Client, WampTestClient
from tests.sse.conftest import HUB, hub_server, publish, pusher_of, subscribed
from tests.support.server import url_of
from tests.support.waiting import eventually


async def test_headers_are_flushed_before_any_update() -> None:
    """The stream's headers and a comment arrive at once: the protocol's headers, the Link."""
    async with hub_server() as server, subscribed(server, "topic=acme/channel/1") as reader:
        headers = reader.response.headers
        assert reader.response.status_code == 200
        assert headers["content-type"] == "text/event-stream"
        assert headers["x-accel-buffering"] == "no"
        assert "no-cache" in headers["cache-control"]
        assert headers["link"] == f'<{HUB}>; rel="mercure"'
        assert bytes(reader.raw) == b":\n" and reader.events == []


async def test_one_push_reaches_sse_wamp1_and_wamp2_subscribers() -> None:
    """A push through a pusher reaches an SSE, a WAMP v1 and a WAMP v2 subscriber alike."""
    async with hub_server() as server, subscribed(server, "topic=acme/channel/7") as reader:
        v1 = await WampTestClient.connect(url_of(server))
        v2 = await V2Client.join(url_of(server))
        try:
            v1.subscribe("acme/channel/7")
            await v2.subscribe("acme/channel/7")
            await eventually(lambda: len(server.topics["acme/channel/7"]) == 3)
            await pusher_of(server).push({"msg": "hi", "n": 1}, "acme_topic", {"room": "7"})
            (event,) = await reader.wait(1)
            assert event.data == '{"msg":"hi","n":1}'
            history = server.history.channel("acme/channel/7")
            assert history is not None and history.position is not None
            assert event.id == position_id(history.position)
            assert await v1.next_event("acme/channel/7") == {"msg": "hi", "n": 1}
            assert await v2.next_event("acme/channel/7") == {"msg": "hi", "n": 1}
        finally:
            await v1.close()
            await v2.leave()


async def test_mercure_data_reaches_sse_byte_for_byte_and_wamp_as_a_string() -> None:
    """Multi-line data is split into data: lines; a WAMP v1 subscriber gets the string."""
    topic = "https://example.com/books/1"
    async with hub_server() as server, subscribed(server, f"topic={topic}") as reader:
        v1 = await WampTestClient.connect(url_of(server))
        try:
            v1.subscribe(topic)
            await eventually(lambda: len(server.topics[topic]) == 2)
            fields = [("topic", topic), ("data", "line 1\nline 2\r\nline 3"), ("id", "book-1")]
            answer = await publish(server, [*fields, ("type", "book"), ("retry", "5000")])
            assert answer.status_code == 200 and answer.text == "book-1"
            (event,) = await reader.wait(1)
            assert (event.data, event.id, event.type, event.retry) == (
                "line 1\nline 2\nline 3",
                "book-1",
                "book",
                5000,
            )
            assert b"data: line 1\ndata: line 2\ndata: line 3\n\n" in reader.raw
            assert await v1.next_event(topic) == "line 1\nline 2\r\nline 3"
        finally:
            await v1.close()


async def test_templates_patterns_and_star_select_topics() -> None:
    """``*``, a URI template and a URL pattern receive what matches them, exact topics too."""
    books = "https://example.com/books/{id}"
    async with (
        hub_server() as server,
        subscribed(server, "topic=*") as everything,
        subscribed(server, f"topic={books}") as template,
        subscribed(server, "match_urlpattern=https://example.com/books/:id") as pattern,
        subscribed(server, "topic=https://example.com/authors/1") as other,
    ):
        for topic in ("https://example.com/books/5", "https://example.com/authors/1"):
            answer = await publish(server, [("topic", topic), ("data", topic)])
            assert answer.status_code == 200
        assert [e.data for e in await everything.wait(2)] == [
            "https://example.com/books/5",
            "https://example.com/authors/1",
        ]
        assert [e.data for e in await template.wait(1)] == ["https://example.com/books/5"]
        assert [e.data for e in await pattern.wait(1)] == ["https://example.com/books/5"]
        assert [e.data for e in await other.wait(1)] == ["https://example.com/authors/1"]
        sentinel = "https://example.com/books/6"  # nothing else arrived before it
        assert (await publish(server, [("topic", sentinel), ("data", "sentinel")])).is_success
        assert [e.data for e in await template.wait(2)][1] == "sentinel"
        assert [e.data for e in await pattern.wait(2)][1] == "sentinel"
        await publish(server, [("topic", "https://example.com/authors/1"), ("data", "sentinel")])
        assert [e.data for e in await other.wait(2)][1] == "sentinel"


async def test_heartbeat_comments_keep_an_idle_stream_alive() -> None:
    """With ``mercure.heartbeat`` set, an idle stream gets a comment line at that interval."""
    async with (
        hub_server({"heartbeat": 0.2}) as server,
        subscribed(server, "topic=acme/channel/1") as reader,
    ):
        await reader.wait_comments(3)


async def test_cors_headers_only_for_allowed_origins() -> None:
    """An allowed Origin gets CORS headers with credentials; another gets none."""
    async with hub_server({"cors_origins": ["https://app.example"]}) as server:
        query = "topic=acme/channel/1"
        good = {"Origin": "https://app.example"}
        async with subscribed(server, query, good) as reader:
            headers = reader.response.headers
            assert headers["access-control-allow-origin"] == "https://app.example"
            assert headers["access-control-allow-credentials"] == "true"
        async with subscribed(server, query, {"Origin": "https://evil.example"}) as reader:
            assert "access-control-allow-origin" not in reader.response.headers
        async with httpx.AsyncClient() as client:
            url = f"http://127.0.0.1:{server.port}{HUB}"
            preflight = await client.options(
                url, headers={**good, "Access-Control-Request-Method": "GET"}
            )
        assert preflight.status_code == 204
        assert "last-event-id" in preflight.headers["access-control-allow-headers"]


async def test_bad_subscriptions_are_refused_with_400() -> None:
    """No topic, or a topic no route matches, is refused before the stream opens."""
    routes = {"acme_topic": {"pattern": "acme/channel/{room}", "callback": "acme.topic"}}
    async with hub_server(routes=routes) as server, httpx.AsyncClient() as client:
        url = f"http://127.0.0.1:{server.port}{HUB}"
        assert (await client.get(url)).status_code == 400
        answer = await client.get(url, params={"topic": "https://example.com/nothing"})
        assert answer.status_code == 400 and "No routes found" in answer.text


async def test_sse_subscribers_count_as_connections() -> None:
    """An SSE subscriber is a connection of the server while its stream is open."""
    async with hub_server() as server:
        async with subscribed(server, "topic=acme/channel/1"):
            await eventually(lambda: server.connections == 1)
            assert len(server.topics["acme/channel/1"]) == 1
        await eventually(lambda: server.connections == 0 and not server.topics)


async def test_more_exact_topics_than_max_subscriptions_are_refused_with_nothing_kept() -> None:
    """Three exact topics (replaying) with max_subscriptions 2: 400, and no topic keeps the
    refused subscriber (no membership, no held buffer)."""
    topics = [("topic", f"https://example.com/books/{n}") for n in (1, 2, 3)]
    async with (
        hub_server(limits={"max_subscriptions": 2}) as server,
        httpx.AsyncClient() as client,
    ):
        url = f"http://127.0.0.1:{server.port}{HUB}"
        answer = await client.get(url, params=topics, headers={"Last-Event-ID": "x-1"})
        assert answer.status_code == 400 and "max_subscriptions" in answer.text
        assert not any(len(topic) for topic in server.topics.values())
        await eventually(lambda: server.connections == 0 and not server.topics)


async def test_an_update_to_several_topics_reaches_a_subscriber_of_each_once() -> None:
    """An update to two topics of two channels: a ``*`` subscriber and a subscriber of both
    get it once; the next event is the sentinel published after it."""
    one, two = "https://example.com/books/1", "https://example.com/books/2"
    async with (
        hub_server() as server,
        subscribed(server, "topic=*") as star,
        subscribed(server, f"topic={one}&topic={two}") as both,
    ):
        both_topics = [("topic", one), ("topic", two), ("data", "twice?")]
        answer = await publish(server, both_topics)
        await publish(server, [("topic", one), ("data", "sentinel")])
        for reader in (star, both):
            events = await reader.wait(2)
            assert [e.data for e in events] == ["twice?", "sentinel"]
            assert events[0].id == answer.text
