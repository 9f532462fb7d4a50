"""Publisher and subscriber JWTs as MercureBundle makes them; private updates; bad tokens."""

from __future__ import annotations

import time

import httpx
import pytest

from gos_web_socket.app.exceptions import AuthenticationFailed
from gos_web_socket.app.sse.tokens import MercureTokens
from gos_web_socket.app.testing import WampTestClient
from gos_web_socket.settings.auth import AuthenticationSettings
from gos_web_socket.settings.mercure import MercureSettings
from tests.sse.conftest import HUB, SECRET, hub_server, publish, subscribed, token
from tests.support.server import url_of
from tests.support.waiting import eventually

BOOK = "https://example.com/books/1"
USER_BOOK = "https://example.com/users/42/books/1"


def bearer(jwt: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {jwt}"}


async def test_private_updates_reach_only_subscribers_whose_token_allows_a_topic() -> None:
    """Three subscribers of one topic: the user's token and the book's token get the private
    update, the anonymous one and a WAMP v1 client only the public one after it."""
    mine = token({"mercure": {"subscribe": ["https://example.com/users/42/{+rest}"]}})
    books = token({"mercure": {"subscribe": [BOOK]}})
    query = f"topic={BOOK}"
    async with (
        hub_server() as server,
        subscribed(server, query, bearer(mine)) as user,
        subscribed(server, query, {"Cookie": f"mercureAuthorization={books}"}) as reader,
        subscribed(server, query) as anonymous,
    ):
        v1 = await WampTestClient.connect(url_of(server))
        try:
            v1.subscribe(BOOK)
            await eventually(lambda: len(server.topics[BOOK]) == 4)
            secret = [("topic", BOOK), ("topic", USER_BOOK), ("data", "secret"), ("private", "on")]
            assert (await publish(server, secret)).status_code == 200
            assert (await publish(server, [("topic", BOOK), ("data", "public")])).status_code == 200
            assert [e.data for e in await user.wait(2)] == ["secret", "public"]
            assert [e.data for e in await reader.wait(2)] == ["secret", "public"]
            assert [e.data for e in await anonymous.wait(1)] == ["public"]
            assert await v1.next_event(BOOK) == "public"
            assert v1.unread_events() == []
            assert (await publish(server, [("topic", BOOK), ("data", "sentinel")])).is_success
            assert [e.data for e in await anonymous.wait(2)] == ["public", "sentinel"]
            assert await v1.next_event(BOOK) == "sentinel"  # nothing came before it
        finally:
            await v1.close()


async def test_bad_publisher_tokens_are_refused_with_the_protocols_codes() -> None:
    """None, forged, expired: 401; a token without a publish grant for the topic: 403; a
    malformed Authorization header: 400. Nothing is published."""
    fields = [("topic", BOOK), ("data", "x")]
    cases = {
        None: 401,
        token({"mercure": {"publish": ["*"]}}, secret="f" * 40): 401,
        token({"mercure": {"publish": ["*"]}}, exp=time.time() - 60): 401,
        token({"mercure": {"subscribe": ["*"]}}): 403,
        token({"mercure": {"publish": ["https://example.com/authors/{id}"]}}): 403,
        "not-a-jwt": 401,
    }
    async with hub_server() as server, subscribed(server, f"topic={BOOK}") as reader:
        for jwt, status in cases.items():
            answer = await publish(server, fields, bearer=jwt)
            assert answer.status_code == status, (jwt, answer.text)
            if status == 401:
                assert answer.headers["www-authenticate"].startswith("Bearer")
        async with httpx.AsyncClient() as client:
            url = f"http://127.0.0.1:{server.port}{HUB}"
            answer = await client.post(url, data=dict(fields), headers={"Authorization": "Basic x"})
        assert answer.status_code == 400
        assert (await publish(server, [("topic", BOOK), ("data", "sentinel")])).is_success
        (first,) = await reader.wait(1)
        assert first.data == "sentinel"  # nothing was published before it


async def test_bad_subscriber_tokens_are_refused_before_the_stream() -> None:
    """A forged or expired subscriber token gets 401, never a stream; without
    ``mercure.anonymous`` no token is 401 too."""
    forged = token({"mercure": {"subscribe": ["*"]}}, secret="f" * 40)
    expired = token({"mercure": {"subscribe": ["*"]}}, exp=time.time() - 60)
    async with hub_server({"anonymous": False}) as server, httpx.AsyncClient() as client:
        url = f"http://127.0.0.1:{server.port}{HUB}"
        for headers in (bearer(forged), bearer(expired), {}):
            answer = await client.get(url, params={"topic": BOOK}, headers=headers)
            assert answer.status_code == 401
            assert answer.headers["content-type"] != "text/event-stream"


async def test_separate_publisher_key() -> None:
    """With ``mercure.publisher_secret`` set, publisher tokens are signed with it."""
    other = "p" * 40
    async with hub_server({"publisher_secret": other}) as server:
        ours = token({"mercure": {"publish": ["*"]}}, secret=other)
        assert (await publish(server, [("topic", BOOK)], bearer=ours)).status_code == 200
        shared = token({"mercure": {"publish": ["*"]}}, secret=SECRET)
        assert (await publish(server, [("topic", BOOK)], bearer=shared)).status_code == 401


async def test_the_stream_ends_when_the_subscriber_token_expires() -> None:
    """A subscriber token's ``exp`` ends its stream (the client reconnects with a new one)."""
    soon = token({"mercure": {"subscribe": [BOOK]}}, exp=time.time() + 2)
    async with hub_server() as server, subscribed(server, f"topic={BOOK}", bearer(soon)) as r:
        await eventually(lambda: r.ended, within=10, what="the stream ended")
        await eventually(lambda: server.connections == 0)


async def test_private_updates_reach_wamp_subscribers_on_a_route_stricter_than_anyone() -> None:
    """On a route whose subscribe rule is ``authenticated``, a private update reaches the
    authenticated WAMP v1 subscriber and the SSE subscriber whose token allows the topic."""
    topic = "https://example.com/private/1"
    routes = {
        "private": {
            "pattern": "https://example.com/private/{id}",
            "callback": "mercure.relay",
            "options": {"auth": {"subscribe": "authenticated"}},
        }
    }
    sse_token = token({"sub": "7", "mercure": {"subscribe": [topic]}})
    async with (
        hub_server(routes=routes) as server,
        subscribed(server, f"topic={topic}", bearer(sse_token)) as reader,
    ):
        v1 = await WampTestClient.connect(url_of(server) + "?token=" + token({"sub": "42"}))
        try:
            v1.subscribe(topic)
            await eventually(lambda: len(server.topics[topic]) == 2)
            fields = [("topic", topic), ("data", "for members"), ("private", "on")]
            assert (await publish(server, fields)).status_code == 200
            assert [e.data for e in await reader.wait(1)] == ["for members"]
            assert await v1.next_event(topic) == "for members"
        finally:
            await v1.close()
        async with httpx.AsyncClient() as client:  # anonymous: the route's rule refuses
            url = f"http://127.0.0.1:{server.port}{HUB}"
            answer = await client.get(url, params={"topic": topic})
        assert answer.status_code == 403


async def test_a_private_update_to_an_open_route_without_the_relay_is_refused() -> None:
    """A private publish to ``acme/channel/1`` (handler acme.topic, rule anyone): 400; the
    anonymous WAMP v1 subscriber's next event is the public one, and history keeps only it."""
    channel = "acme/channel/1"
    async with hub_server() as server:
        v1 = await WampTestClient.connect(url_of(server))
        try:
            v1.subscribe(channel)
            await eventually(lambda: channel in server.topics and len(server.topics[channel]) == 1)
            secret = [("topic", channel), ("data", "secret"), ("private", "on")]
            refused = await publish(server, secret)
            assert refused.status_code == 400 and "mercure.relay" in refused.text
            assert (await publish(server, [("topic", channel), ("data", "public")])).is_success
            assert await v1.next_event(channel) == "public"
            history = server.history.channel(channel)
            assert history is not None
            assert [str(p.payload) for p in history] == ["public"]
        finally:
            await v1.close()


def test_the_providers_required_claims_are_required_but_sub() -> None:
    """required_claims [exp, sub]: a Mercure token without ``exp`` is refused, one with
    ``exp`` and no ``sub`` (as MercureBundle makes them) is accepted."""
    jwt_provider = {"enabled": True, "secret": SECRET, "required_claims": ["exp", "sub"]}
    auth = AuthenticationSettings.model_validate({"providers": {"jwt": jwt_provider}})
    tokens = MercureTokens(auth, MercureSettings())
    claims = {"mercure": {"publish": ["*"]}}
    with pytest.raises(AuthenticationFailed):
        tokens.grant({"authorization": f"Bearer {token(claims)}"}, "publish")
    headers = {"authorization": f"Bearer {token(claims, exp=time.time() + 60)}"}
    grant = tokens.grant(headers, "publish")
    assert grant is not None and grant.selectors is not None and grant.selectors.matches(BOOK)


async def test_a_cookie_publish_needs_an_origin_in_publish_origins() -> None:
    """A publisher token in the cookie: without Origin or Referer, or from an origin not in
    ``mercure.publish_origins``, 400 ``invalid_request`` and nothing published; from an
    allowed Origin (or Referer) it publishes; a Bearer token needs no origin."""
    publisher = token({"mercure": {"publish": ["*"]}})
    cookie = {"Cookie": f"mercureAuthorization={publisher}"}
    refused = [{}, {"Origin": "https://evil.example"}, {"Referer": "https://evil.example/p"}]
    allowed = [{"Origin": "https://app.example"}, {"Referer": "https://app.example/page?x=1"}]
    mercure = {"publish_origins": ["https://app.example"]}
    async with hub_server(mercure) as server, subscribed(server, f"topic={BOOK}") as reader:
        async with httpx.AsyncClient() as client:
            url = f"http://127.0.0.1:{server.port}{HUB}"
            for n, headers in enumerate(refused + allowed):
                fields = {"topic": BOOK, "data": f"d{n}"}
                answer = await client.post(url, data=fields, headers={**cookie, **headers})
                if headers in refused:
                    assert answer.status_code == 400, (headers, answer.text)
                    assert "invalid_request" in answer.headers["www-authenticate"]
                else:
                    assert answer.status_code == 200, (headers, answer.text)
        assert (await publish(server, [("topic", BOOK), ("data", "bearer")])).is_success
        events = await reader.wait(3)
        assert [e.data for e in events] == ["d3", "d4", "bearer"]
    async with hub_server() as server, httpx.AsyncClient() as client:  # none by default
        url = f"http://127.0.0.1:{server.port}{HUB}"
        origin = {"Origin": "https://app.example"}
        answer = await client.post(url, data={"topic": BOOK}, headers={**cookie, **origin})
        assert answer.status_code == 400
