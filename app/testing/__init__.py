"""Test helpers for your own server: a real one on a free port, built from your container.

Use it from your tests (pytest with pytest-asyncio)::

    from app.testing import WampTestClient, running, url_of

    async def test_a_client_gets_what_another_publishes():
        async with running(Realtime, config=Path("config.yaml")) as container:
            client = await WampTestClient.connect(url_of(container))
            client.subscribe("chat/room/lobby")
            client.publish("chat/room/lobby", "hi")
            assert await client.next_event("chat/room/lobby", timeout=5) == ...
            await client.close()

The server listens on 127.0.0.1 port 0 (a free one) with the demo page and the metrics listener
off unless ``server`` says otherwise; ``running`` starts it as ``gos-websocket server`` does and
stops it on exit.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import containers
from app.testing.wamp1 import CallError, ConnectFailed, WampTestClient

__all__ = ["CallError", "ConnectFailed", "WampTestClient", "make_container", "running", "url_of"]

SERVER = "gos_web_socket.server"
RUNTIME = "gos_web_socket.runtime"


def make_container(
    container_class: type[containers.Container] = containers.Container,
    config: Path | None = None,
    server: Mapping[str, Any] | None = None,
    **settings: Any,
) -> containers.Container:
    """``container_class`` reading ``config`` with the test's settings on top: ``server`` is
    merged into the ``server:`` node (loopback, port 0, HTTP and metrics off by default)."""
    off = {"enabled": False}
    node = {"host": "127.0.0.1", "port": 0, "http": off, "metrics": off, **(server or {})}
    return containers.create_container(config, container_class, server=node, **settings)


@contextlib.asynccontextmanager
async def running(
    container_class: type[containers.Container] = containers.Container,
    config: Path | None = None,
    server: Mapping[str, Any] | None = None,
    **settings: Any,
) -> AsyncIterator[containers.Container]:
    """``make_container(...)`` with its runtime started, stopped on exit."""
    container = make_container(container_class, config, server, **settings)
    async with containers.get_service(container, RUNTIME):
        yield container


def url_of(container: containers.Container, scheme: str = "ws") -> str:
    """The WebSocket URL of ``container``'s running server."""
    port = containers.get_service(container, SERVER).port
    return f"{scheme}://127.0.0.1:{port}/"
