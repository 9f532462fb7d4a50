"""Fixtures for the WAMP pusher: a tiny WAMP v1 server stub that records what it is sent."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from autobahn.asyncio.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionRequest

from gos_web_socket.app.router import Router, load_routes
from gos_web_socket.settings.models import DEFAULT_ROUTING, WampSettings


class _StubProtocol(WebSocketServerProtocol):
    stub: WampStub

    def onConnect(self, request: ConnectionRequest) -> str | None:
        self.stub.handshakes.append(
            {"origin": request.headers.get("origin"), "protocols": request.protocols}
        )
        return "wamp" if "wamp" in request.protocols else None

    def onOpen(self) -> None:
        self.stub.connections.add(self)
        if self.stub.welcome:
            self.sendMessage(json.dumps([0, "stub-session", 1, "stub/1"]).encode())  # type: ignore[no-untyped-call]

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.stub.frames.put_nowait(json.loads(payload))

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if self in self.stub.connections:
            self.stub.connections.discard(self)
            self.stub.closes.put_nowait(code)


class WampStub:
    """Just enough WAMP v1 server: WELCOME on open (unless told not to), then record frames."""

    def __init__(self, port: int, welcome: bool = True) -> None:
        self.port = port
        self.welcome = welcome
        self.handshakes: list[dict[str, Any]] = []
        self.connections: set[_StubProtocol] = set()
        self.frames: asyncio.Queue[Any] = asyncio.Queue()
        self.closes: asyncio.Queue[int | None] = asyncio.Queue()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        factory = WebSocketServerFactory(f"ws://127.0.0.1:{self.port}", loop=loop)  # type: ignore[no-untyped-call]

        class BoundStubProtocol(_StubProtocol):
            pass

        BoundStubProtocol.stub = self
        factory.protocol = BoundStubProtocol
        self._server = await loop.create_server(factory, "127.0.0.1", self.port)

    async def stop(self) -> None:
        """Stop listening and close every connection (1000), waiting until they are gone."""
        if self._server is not None:
            self._server.close()
            self._server = None
        open_now = list(self.connections)
        for connection in open_now:
            connection.sendClose(1000)
        async with asyncio.timeout(5):
            for _ in open_now:
                await self.closes.get()

    async def take(self, count: int, within: float = 10.0) -> list[Any]:
        async with asyncio.timeout(within):
            return [await self.frames.get() for _ in range(count)]


@pytest.fixture
def router() -> Router:
    return Router(load_routes(DEFAULT_ROUTING))


@pytest.fixture
def wamp_settings(unused_port: int) -> WampSettings:
    """3 s to connect: with 1 s, the fast tier's four workers on 2 cores sometimes timed out
    the opening handshake, and the pusher's retry then broke the tests' one-handshake checks."""
    return WampSettings(port=unused_port, timeout=3.0, max_backoff=0.2)


@pytest.fixture
async def stub(wamp_settings: WampSettings) -> AsyncIterator[WampStub]:
    stub = WampStub(wamp_settings.port)
    await stub.start()
    try:
        yield stub
    finally:
        await stub.stop()
