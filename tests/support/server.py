"""A real server for a test, built by the project's container as `gos-websocket server` is."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import Any

from dependency_injector import providers

from gos_web_socket import containers
from gos_web_socket.app.events import EventDispatcher
from gos_web_socket.app.registry import ServerPushHandlerRegistry
from gos_web_socket.app.router import Router, load_routes, load_routes_from_mapping
from gos_web_socket.app.server import RpcHandler, TopicHandler, WampServer
from gos_web_socket.settings.models import DEFAULT_ROUTING, Settings

SERVER = "gos_web_socket.server"
RUNTIME = "gos_web_socket.runtime"


def make_container(
    topics: Iterable[TopicHandler] = (),
    rpcs: Iterable[RpcHandler] = (),
    push_handlers: Mapping[str, Any] | None = None,
    routes: Mapping[str, Any] | str | Path | None = None,
    dispatcher: EventDispatcher | None = None,
    pushers: Mapping[str, Any] | None = None,
    authentication: Mapping[str, Any] | None = None,
    **server_settings: Any,
) -> containers.Container:
    """The project's container for a test: 127.0.0.1 port 0, only the parts the test names.

    ``server_settings`` go to ``server:`` (the demo HTTP page and the metrics listener stay
    off unless named there); ``pushers`` to ``pushers:`` (every transport off unless named);
    ``push_handlers`` replaces the handler registry; ``routes`` is a routing mapping (GOS YAML
    shape) or a file (default: settings/routing.yaml); ``authentication`` is that node.
    """
    origins = server_settings.pop("origins", [])
    blocked = server_settings.pop("blocked_ip_addresses", [])
    off = {"enabled": False}
    settings = Settings(
        server={"host": "127.0.0.1", "port": 0, "http": off, "metrics": off, **server_settings},
        pushers={"amqp": off, "wamp": off, "zmq": off, **(pushers or {})},
        origins=origins,
        blocked_ip_addresses=blocked,
        authentication=dict(authentication or {}),
    )
    if routes is None or isinstance(routes, str | Path):
        collection = load_routes(routes or DEFAULT_ROUTING)
    else:
        collection = load_routes_from_mapping(routes)
    container = containers.Container()
    container.settings.override(providers.Object(settings))
    gos = container.gos_web_socket
    gos.router.override(providers.Object(Router(collection)))
    # Only the handlers the test names: the demo ones are dropped as server.demo: false does.
    gos.demo_topics.override(providers.List())
    gos.demo_rpcs.override(providers.List())
    gos.topics.override(providers.List(*(providers.Object(t) for t in topics)))
    gos.rpcs.override(providers.List(*(providers.Object(r) for r in rpcs)))
    if push_handlers is not None:
        registry = ServerPushHandlerRegistry(push_handlers)
        gos.server_push_handler.registry.override(providers.Object(registry))
    if dispatcher is not None:
        gos.event_dispatcher.override(providers.Object(dispatcher))
    return container


def make_server(*args: Any, **kwargs: Any) -> WampServer:
    """The container's server (not started) for ``make_container(...)``."""
    server: WampServer = service(make_container(*args, **kwargs), SERVER)
    return server


@contextlib.asynccontextmanager
async def running(*args: Any, **kwargs: Any) -> AsyncIterator[containers.Container]:
    """``make_container(...)`` with its runtime started (as `gos-websocket server` starts it),
    stopped on exit; ``service(container, id)`` reaches its parts."""
    container = make_container(*args, **kwargs)
    async with service(container, RUNTIME):
        yield container


@contextlib.asynccontextmanager
async def running_server(*args: Any, **kwargs: Any) -> AsyncIterator[WampServer]:
    """``make_container(...)`` started on a free port, stopped on exit; yields its server."""
    async with running(*args, **kwargs) as container:
        yield service(container, SERVER)


def service(container: containers.Container, service_id: str) -> Any:
    """The service of ``container`` under its GOS id."""
    return containers.get_service(container, service_id)


def url_of(server: WampServer, scheme: str = "ws") -> str:
    return f"{scheme}://127.0.0.1:{server.port}/"
