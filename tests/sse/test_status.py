"""The protocol's status codes for refusals: 403 for a topic's secure(), 500 for a hook's
error, bare and ``invalid_request`` challenges, bounded fields, reserved topics by segment."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from gos_web_socket.app.exceptions import FirewallRejection
from gos_web_socket.app.server.handlers import PushableTopic, SecuredTopic
from gos_web_socket.app.sse.relay import MercureRelay
from tests.sse.conftest import HUB, ROUTES, hub_server, publish

BOOK = "https://example.com/books/1"


class Picky(SecuredTopic, PushableTopic):
    """``secure()`` refuses room ``no`` and fails on room ``bug``."""

    name = "picky"

    async def secure(self, connection: Any, topic: Any, request: Any, *_: Any, **__: Any) -> None:
        if request.attributes["room"] == "bug":
            raise RuntimeError("a bug in the hook")
        if connection is not None and request.attributes["room"] == "no":
            raise FirewallRejection("members only")

    async def on_push(self, topic: Any, request: Any, data: Any, provider: Any) -> None:
        topic.broadcast(data)


PICKY = {"picky": {"pattern": "picky/{room}", "callback": "picky"}, **ROUTES}


async def test_a_secure_refusal_is_403_and_a_hook_error_500() -> None:
    """Subscribing to a channel whose secure() refuses: 403; whose secure() raises: 500."""
    async with (
        hub_server(routes=PICKY, topics=[Picky(), MercureRelay()]) as server,
        httpx.AsyncClient() as client,
    ):
        url = f"http://127.0.0.1:{server.port}{HUB}"
        assert (await client.get(url, params={"topic": "picky/no"})).status_code == 403
        assert (await client.get(url, params={"topic": "picky/bug"})).status_code == 500


async def test_challenges_name_the_error_as_the_protocol_says() -> None:
    """No token: 401 with a bare ``Bearer`` challenge; a non-Bearer Authorization: 400 with
    ``error="invalid_request"``; a body that is not UTF-8 without a token: 401 (checked first)."""
    async with hub_server() as server, httpx.AsyncClient() as client:
        missing = await publish(server, [("topic", BOOK), ("data", "x")], bearer=None)
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        url = f"http://127.0.0.1:{server.port}{HUB}"
        basic = await client.post(url, data={"topic": BOOK}, headers={"Authorization": "Basic x"})
        assert basic.status_code == 400
        assert basic.headers["www-authenticate"] == 'Bearer error="invalid_request"'
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        garbage = await client.post(url, content=b"topic=\xff\xfe", headers=form)
        assert garbage.status_code == 401


async def test_oversized_retry_and_reserved_topics_are_400_by_path_segment() -> None:
    """``retry`` of 5,000 digits: 400; the hub's path or a topic under it: 400; a topic that
    only starts with the same characters: published."""
    async with hub_server() as server:
        huge = await publish(server, [("topic", BOOK), ("retry", "9" * 5000)])
        assert huge.status_code == 400
        under = await publish(server, [("topic", HUB + "/subscriptions")])
        assert under.status_code == 400
        assert (await publish(server, [("topic", HUB)])).status_code == 400
        beside = await publish(server, [("topic", HUB + "-news"), ("data", "x")])
        assert beside.status_code == 200, beside.text


async def test_a_chunked_publish_is_411() -> None:
    """A publish with ``Transfer-Encoding: chunked`` (no Content-Length): 411."""
    async with hub_server() as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        body = b"topic=x"
        head = f"POST {HUB} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        writer.write(head.encode() + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        status = await asyncio.wait_for(reader.readline(), 10)
        writer.close()
        assert status.split()[1] == b"411"
