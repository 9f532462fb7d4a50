"""Test helpers for your own server: a real one on a free port, built from your container.

Use it from your tests (pytest with pytest-asyncio)::

    from gos_web_socket.testing import WampTestClient, running, url_of

    async def test_a_client_gets_what_another_publishes():
        async with running(Realtime, config=Path("config.yaml")) as container:
            client = await WampTestClient.connect(url_of(container))
            client.subscribe("chat/room/lobby")
            client.publish("chat/room/lobby", "hi")
            assert await client.next_event("chat/room/lobby", timeout=5) == ...
            await client.close()

The server listens on 127.0.0.1 port 0 (a free one) with the demo page and the metrics listener
off unless ``server`` says otherwise; ``running`` starts it as ``gos-websocket server`` does and
stops it on exit. These helpers build containers, so they live beside the composition root
(``containers.py``); the clients they re-export are ``gos_web_socket.app.testing``'s.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import Any

from dependency_injector import providers

from gos_web_socket import containers
from gos_web_socket.app.testing import (
    CallError,
    ConnectFailed,
    JoinFailed,
    LinkedMemoryPusher,
    RawPeer,
    V2Client,
    WampTestClient,
)
from gos_web_socket.app.transports.memory import InMemoryPusher, InMemoryServerPushHandler

__all__ = [
    "MEMORY",
    "CallError",
    "ConnectFailed",
    "JoinFailed",
    "LinkedMemoryPusher",
    "RawPeer",
    "V2Client",
    "WampTestClient",
    "make_container",
    "memory_pusher",
    "running",
    "url_of",
    "use_memory_pusher",
]

MEMORY = "memory"
"""The alias of the in-memory pusher and push handler ``use_memory_pusher`` adds."""

SERVER = "gos_web_socket.server"
RUNTIME = "gos_web_socket.runtime"


def make_container(
    container_class: type[containers.Container] = containers.Container,
    config: Path | None = None,
    server: Mapping[str, Any] | None = None,
    memory: bool = False,
    **settings: Any,
) -> containers.Container:
    """``container_class`` reading ``config`` with the test's settings on top: ``server`` is
    merged into the ``server:`` node (loopback, port 0, HTTP and metrics off by default);
    ``memory`` adds the in-memory pusher (use_memory_pusher)."""
    off = {"enabled": False}
    node = {"host": "127.0.0.1", "port": 0, "http": off, "metrics": off, **(server or {})}
    container = containers.create_container(config, container_class, server=node, **settings)
    if memory:
        use_memory_pusher(container)
    return container


def use_memory_pusher(container: containers.Container, replaces: Iterable[str] = ()) -> None:
    """Add an in-memory pusher and push handler pair under ``memory`` (before the server
    starts): a push through it reaches the server's topics with no broker. ``replaces`` names
    transports (``"zmq"``, ``"amqp"``) whose ``gos_web_socket.<name>.pusher`` it stands in for,
    so code wired with ``Provide["gos_web_socket.zmq.pusher"]`` pushes in memory too."""
    gos = container.gos_web_socket
    handler = providers.Singleton(
        InMemoryServerPushHandler, router=gos.router, dispatcher=gos.event_dispatcher
    )
    pusher = providers.Singleton(LinkedMemoryPusher, router=gos.router, handler=handler.provider)
    gos.server_push_handler.collection.add_kwargs(**{MEMORY: handler})  # type: ignore[attr-defined]
    gos.pushers.add_kwargs(**{MEMORY: pusher})  # type: ignore[attr-defined]
    for name in replaces:
        getattr(gos, name).pusher.override(pusher)


def memory_pusher(container: containers.Container) -> InMemoryPusher:
    """The pusher ``use_memory_pusher`` added; ``.sent`` records what it pushed."""
    found: InMemoryPusher = containers.get_service(container, "gos_web_socket.pusher_registry")[
        MEMORY
    ]
    return found


@contextlib.asynccontextmanager
async def running(
    container_class: type[containers.Container] = containers.Container,
    config: Path | None = None,
    server: Mapping[str, Any] | None = None,
    memory: bool = False,
    **settings: Any,
) -> AsyncIterator[containers.Container]:
    """``make_container(...)`` with its runtime started, stopped on exit."""
    container = make_container(container_class, config, server, memory, **settings)
    async with containers.get_service(container, RUNTIME):
        yield container


def url_of(container: containers.Container, scheme: str = "ws") -> str:
    """The WebSocket URL of ``container``'s running server."""
    port = containers.get_service(container, SERVER).port
    return f"{scheme}://127.0.0.1:{port}/"
