"""A real server with the Mercure hub for the SSE tests, and an SSE reader over httpx."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
from dependency_injector import providers

from gos_web_socket.app.demo.handlers import AcmeTopic
from gos_web_socket.app.server import TopicHandler, WampServer
from gos_web_socket.app.sse.relay import MercureRelay
from gos_web_socket.app.transports.memory import InMemoryPusher
from gos_web_socket.settings.mercure import MercureSettings
from gos_web_socket.testing import memory_pusher, use_memory_pusher
from tests.support.server import RUNTIME, SERVER, make_container, service

SECRET = "s" * 40
"""The JWT provider's secret: WebSocket, SSE and publishing share it (MERCURE_JWT_SECRET)."""
HUB = "/.well-known/mercure"

ROUTES: dict[str, Any] = {
    "acme_topic": {
        "pattern": "acme/channel/{room}",
        "callback": "acme.topic",
        "history": {"size": 1000},
    },
    "books": {
        "pattern": "https://example.com/books/{id}",
        "callback": "mercure.relay",
        "requirements": {"id": "\\d+"},
        "history": {"size": 1000},
    },
    "mercure_all": {
        "pattern": "{topic}",
        "callback": "mercure.relay",
        "requirements": {"topic": ".+"},
    },
}
"""The routes the tests use: GOS's own, a history route of IRIs, and the documented catch-all."""


def token(claims: Mapping[str, Any], secret: str = SECRET, exp: float | None = None) -> str:
    """A JWT as MercureBundle makes one: HS256, ``mercure`` claim, no ``sub``."""
    body = dict(claims)
    if exp is not None:
        body["exp"] = int(exp)
    return jwt.encode(body, secret, algorithm="HS256")


PUBLISHER = token({"mercure": {"publish": ["*"]}})


@contextlib.asynccontextmanager
async def hub_server(
    mercure: Mapping[str, Any] | None = None,
    routes: Mapping[str, Any] | None = None,
    topics: Sequence[TopicHandler] | None = None,
    **server: Any,
) -> AsyncIterator[WampServer]:
    """A started server with the hub (``mercure`` settings), the demo and relay topics (or
    ``topics``), the JWT provider on ``SECRET`` and the in-memory pusher; stopped on exit."""
    auth = {"providers": {"jwt": {"enabled": True, "secret": SECRET}}}
    handlers = list(topics) if topics is not None else [AcmeTopic(), MercureRelay()]
    container = make_container(
        topics=handlers, routes=routes or ROUTES, authentication=auth, **server
    )
    settings = container.settings().model_copy(
        update={"mercure": MercureSettings(**(mercure or {}))}
    )
    container.settings.override(providers.Object(settings))
    use_memory_pusher(container)
    async with service(container, RUNTIME):
        server = service(container, SERVER)
        PUSHERS[id(server)] = memory_pusher(container)
        try:
            yield server
        finally:
            del PUSHERS[id(server)]


PUSHERS: dict[int, InMemoryPusher] = {}


def pusher_of(server: WampServer) -> InMemoryPusher:
    """The in-memory pusher of a ``hub_server``."""
    return PUSHERS[id(server)]


@dataclass
class Event:
    data: str
    id: str | None = None
    type: str | None = None
    retry: int | None = None


@dataclass
class SseReader:
    """One SSE subscription read in the background: events, comments, the response."""

    response: httpx.Response
    events: list[Event] = field(default_factory=list)
    comments: int = 0
    raw: bytearray = field(default_factory=bytearray)
    ended: bool = False
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def read(self) -> None:
        buffer = b""
        try:
            async for chunk in self.response.aiter_raw():
                self.raw += chunk
                buffer += chunk
                while b"\n\n" in buffer:
                    block, buffer = buffer.split(b"\n\n", 1)
                    self._parse(block.decode())
                if buffer == b":\n":  # a lone comment (the flush, a heartbeat)
                    self.comments, buffer = self.comments + 1, b""
                    self.arrived.set()
        except (httpx.ReadError, httpx.RemoteProtocolError):
            pass
        finally:
            self.ended = True
            self.arrived.set()

    def _parse(self, block: str) -> None:
        data: list[str] = []
        event = Event("")
        for line in block.split("\n"):
            if line.startswith(":"):
                self.comments += 1
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            elif name == "id":
                event.id = value
            elif name == "event":
                event.type = value
            elif name == "retry":
                event.retry = int(value)
        if data or event.id is not None:
            event.data = "\n".join(data)
            self.events.append(event)
        self.arrived.set()

    async def wait(self, count: int, timeout: float = 10.0) -> list[Event]:  # noqa: ASYNC109
        """Wait until ``count`` events arrived (in all); returns them."""
        deadline = time.monotonic() + timeout
        while len(self.events) < count:
            if self.ended:
                raise AssertionError(f"stream ended after {len(self.events)} of {count} events")
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{len(self.events)} of {count} events in {timeout} s")
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), left)
        return self.events[:count]

    async def wait_comments(self, count: int, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while self.comments < count:
            left = deadline - time.monotonic()
            assert left > 0 and not self.ended, f"{self.comments} of {count} comments"
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), left)


def subscribed(
    server: WampServer, query: str, headers: Mapping[str, str] | None = None
) -> contextlib.AbstractAsyncContextManager[SseReader]:
    """An open subscription to ``HUB?query`` (status 200 checked), read in the background."""
    return subscribed_at(server.port, query, headers)


@contextlib.asynccontextmanager
async def subscribed_at(
    port: int, query: str, headers: Mapping[str, str] | None = None
) -> AsyncIterator[SseReader]:
    """``subscribed`` to the hub on ``port`` (a server process)."""
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None)) as client:
        url = f"http://127.0.0.1:{port}{HUB}?{query}"
        async with client.stream("GET", url, headers=dict(headers or {})) as response:
            reader = SseReader(response)
            task = asyncio.create_task(reader.read())
            try:
                await reader.wait_comments(1)  # the flush comment: subscribed
                yield reader
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def publish(
    server: WampServer, fields: list[tuple[str, str]], bearer: str | None = PUBLISHER
) -> httpx.Response:
    """A Mercure form POST, as Symfony's ``Hub::publish`` sends it."""
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    async with httpx.AsyncClient(timeout=10.0) as client:
        url = f"http://127.0.0.1:{server.port}{HUB}"
        return await client.post(url, content=urlencode(fields), headers=headers)
