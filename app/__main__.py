"""``python -m gos_web_socket.app``: the entry point that builds the container and runs the CLI.

Only ``server`` and ``worker`` need the whole container (the server stack, autobahn, the auth
stack). With the default container the one-shot commands build just what they ask for: ``config``
and ``health`` the settings, ``routes`` the router, ``push`` the pushers-only container of
``gos_web_socket.push``; so they start in a fraction of the time. A ``server.container`` of your
own is always built whole: it may replace any service.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gos_web_socket.app import cli
from gos_web_socket.app.cli.base import PUSH_TARGETS, Services
from gos_web_socket.app.workers import WorkerRole

if TYPE_CHECKING:
    from gos_web_socket.settings import Settings

LIGHT_SERVICES = ("gos_web_socket.router", "gos_web_socket.pusher_registry")
"""Ids the default container builds as the pushers-only parts do, without the server stack."""


def _container(settings: Settings, profile: bool, worker: WorkerRole | None) -> Any:
    """The root container (``server.container`` names its class) with these settings."""
    # Imported here so `app` itself never depends on the composition root at import time.
    from dependency_injector import providers

    from gos_web_socket import containers

    container_class = containers.Container
    if settings.server.container is not None:
        container_class = containers.load_container_class(settings.server.container)
    container = container_class()  # links its own topics, RPCs, listeners and transports
    container.settings.override(providers.Object(settings))
    if worker is not None:  # one process of server.workers (app.workers)
        container.gos_web_socket.worker.override(providers.Object(worker))
    if profile:
        containers.get_service(container, "gos_web_socket.server").profile = True
    return container


def _light_service(settings: Settings, service_id: str) -> Any:
    """One of LIGHT_SERVICES, built by the same factories as in the default container."""
    if service_id == "gos_web_socket.router":
        from gos_web_socket.app.router import load_router

        return load_router(settings.server.router.resources)
    from dependency_injector import providers

    from gos_web_socket.push import Pushers

    pushers = Pushers(settings=providers.Object(settings))
    # The default server has no push handler of its own: a custom pushers.<name> node that no
    # pusher reads is a typo here too (as the whole container's registry says).
    pushers.registry.add_kwargs(known=())
    return pushers.registry()


DEMO_CALLBACKS = {"acme.topic": "topic", "acme.rpc": "rpc"}
"""The default container's callbacks (app/demo), known without importing the server stack;
tests/unit/test_cli.py holds them equal to the demo classes' names."""


def push_targets(container: Any) -> dict[str, str]:
    """Each callback name of a built container's registries, by kind."""
    from gos_web_socket import containers

    topics = containers.get_service(container, "gos_web_socket.topic_registry")
    rpcs = containers.get_service(container, "gos_web_socket.rpc_registry")
    return {**dict.fromkeys(rpcs, "rpc"), **dict.fromkeys(topics, "topic")}


class CommandServices:
    """The services of one command by id, each built when first asked for (``cli.base.Services``).

    With the default container, LIGHT_SERVICES are built on their own and any other id builds
    the whole container once. A ``server.container`` of yours, ``-m`` and a worker build it at
    once, so a class that cannot be loaded stops the command before it runs.
    """

    def __init__(self, settings: Settings, profile: bool, worker: WorkerRole | None) -> None:
        self.settings = settings
        self._container: Any = None
        self._light: dict[str, Any] = {}
        if settings.server.container is not None or profile or worker is not None:
            self._container = _container(settings, profile, worker)

    def __call__(self, service_id: str) -> Any:
        if service_id == "settings":
            return self.settings
        if service_id == PUSH_TARGETS:
            if self._container is not None:
                return push_targets(self._container)
            return DEMO_CALLBACKS if self.settings.server.demo else {}
        if self._container is None and service_id in LIGHT_SERVICES:
            if service_id not in self._light:
                self._light[service_id] = _light_service(self.settings, service_id)
            return self._light[service_id]
        if self._container is None:
            self._container = _container(self.settings, profile=False, worker=None)
        from gos_web_socket import containers

        return containers.get_service(self._container, service_id)


def _services(
    config: Path | None,
    overrides: Mapping[str, Any],
    profile: bool,
    worker: WorkerRole | None = None,
) -> Services:
    from gos_web_socket.settings import load_settings

    # Read once, before the container: server.container names the class to build, and bad
    # config must stop start-up before anything runs.
    return CommandServices(load_settings(config, **overrides), profile, worker)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``gos-websocket`` console script and ``python -m gos_web_socket.app``."""
    return cli.main(argv, _services)


if __name__ == "__main__":
    sys.exit(main())
