"""``python -m gos_web_socket.app``: the entry point that builds the container and runs the CLI."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gos_web_socket.app import cli
from gos_web_socket.app.workers import WorkerRole


def _services(
    config: Path | None,
    overrides: Mapping[str, Any],
    profile: bool,
    worker: WorkerRole | None = None,
) -> cli.Services:
    # Imported here so `app` itself never depends on the composition root at import time.
    from dependency_injector import providers

    from gos_web_socket import containers
    from gos_web_socket.settings import load_settings

    # Read once, before the container: server.container names the class to build, and bad
    # config must stop start-up before anything runs.
    settings = load_settings(config, **overrides)
    container_class = containers.Container
    if settings.server.container is not None:
        container_class = containers.load_container_class(settings.server.container)
    container = container_class()  # links its own topics, RPCs, listeners and transports
    container.settings.override(providers.Object(settings))
    if worker is not None:  # one process of server.workers (app.workers)
        container.gos_web_socket.worker.override(providers.Object(worker))
    if profile:
        containers.get_service(container, "gos_web_socket.server").profile = True

    def resolve(service_id: str) -> Any:
        if service_id == "settings":
            return container.settings()
        return containers.get_service(container, service_id)

    return resolve


def main(argv: Sequence[str] | None = None) -> int:
    """The ``gos-websocket`` console script and ``python -m gos_web_socket.app``."""
    return cli.main(argv, _services)


if __name__ == "__main__":
    sys.exit(main())
