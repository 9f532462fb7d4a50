"""Start a real WampServer on 127.0.0.1 (port 0) for a test, with the routes you give."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from app.events import EventDispatcher
from app.registry import RpcRegistry, ServerPushHandlerRegistry, TopicRegistry
from app.router import Router, load_routes, load_routes_from_mapping
from app.server import RpcHandler, TopicHandler, WampServer
from settings.models import DEFAULT_ROUTING, Settings


def make_server(
    topics: Iterable[TopicHandler] = (),
    rpcs: Iterable[RpcHandler] = (),
    push_handlers: Mapping[str, Any] | None = None,
    routes: Mapping[str, Any] | str | Path | None = None,
    dispatcher: EventDispatcher | None = None,
    **server_settings: Any,
) -> WampServer:
    """A server (not started) on 127.0.0.1 port 0; ``server_settings`` go to ``server:``.

    ``routes`` is a routing mapping (GOS YAML shape) or a file; default: settings/routing.yaml.
    """
    origins = server_settings.pop("origins", [])
    blocked = server_settings.pop("blocked_ip_addresses", [])
    settings = Settings(
        server={"host": "127.0.0.1", "port": 1337, **server_settings},
        origins=origins,
        blocked_ip_addresses=blocked,
    )
    if routes is None or isinstance(routes, str | Path):
        collection = load_routes(routes or DEFAULT_ROUTING)
    else:
        collection = load_routes_from_mapping(routes)
    return WampServer(
        settings,
        Router(collection),
        TopicRegistry({t.name: t for t in topics}),
        RpcRegistry({r.name: r for r in rpcs}),
        dispatcher or EventDispatcher(),
        ServerPushHandlerRegistry(push_handlers or {}),
    )


@contextlib.asynccontextmanager
async def running_server(*args: Any, **kwargs: Any) -> AsyncIterator[WampServer]:
    """``make_server(...)`` started on a free port, stopped on exit."""
    server = make_server(*args, **kwargs)
    await server.start(port=0)
    try:
        yield server
    finally:
        await server.stop()


def url_of(server: WampServer, scheme: str = "ws") -> str:
    return f"{scheme}://127.0.0.1:{server.port}/"


async def eventually(
    predicate: Callable[[], bool],
    timeout: float = 5.0,  # noqa: ASYNC109
    what: str = "",
) -> None:
    """Wait until ``predicate()`` holds, checking each 5 ms (for server-side state)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"not true within {timeout} s: {what or predicate}")
        await asyncio.sleep(0.005)
