"""The commands that read the configuration only: ``routes``, ``config``, ``catalogue``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, TextIO

import yaml

from gos_web_socket.app.cli.base import EXIT_OK, Services

SECRET_WORDS = ("password", "secret", "token")
"""Keys of custom pusher nodes masked by `config` (their models are unknown here)."""


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """``routes``, ``config`` and ``catalogue`` on ``commands`` (argparse's sub-parsers)."""
    routes = commands.add_parser("routes", parents=[common], help="list the pub/sub routes")
    routes.add_argument("--match", metavar="CHANNEL", help="show the route matching CHANNEL")

    commands.add_parser("config", parents=[common], help="print the resolved settings")

    catalogue = commands.add_parser(
        "catalogue",
        parents=[common],
        help="write an AsyncAPI 3.0 document and TypeScript types of the routes",
    )
    catalogue.add_argument(
        "--out", type=Path, default=Path("catalogue"), metavar="DIR", help="(default: catalogue)"
    )


def print_routes(services: Services, match: str | None, out: TextIO) -> int:
    """``routes``: a table of the routes, or (``--match``) the one a channel matches."""
    router = services("gos_web_socket.router")
    if match is not None:
        request = router.match(match)
        out.write(f"route:    {request.route_name}\n")
        out.write(f"pattern:  {request.route.pattern}\n")
        out.write(f"callback: {request.route.callback}\n")
        for key, value in request.attributes.items():
            out.write(f"  {key}={value}\n")
        return EXIT_OK
    rows = [("NAME", "PATTERN", "CALLBACK", "REQUIREMENTS")]
    for name, route in router.collection.items():
        requirements = ", ".join(f"{k}={v}" for k, v in route.requirements.items())
        rows.append((name, route.pattern, route.callback, requirements or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        out.write("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])))
        out.write(f"  {row[3]}\n")
    return EXIT_OK


def write_catalogue(services: Services, folder: Path, out: TextIO) -> int:
    """The routes as asyncapi.json/.yaml and channels.d.ts (app/catalogue/, docs/catalogue.md)."""
    from gos_web_socket.app.catalogue import write_catalogue as write

    server = services("settings").server
    address = {
        "host": f"{server.host}:{server.port}",
        "protocol": "wss" if server.tls.enabled else "ws",
        "description": "The WAMP v1/v2 WebSocket server (server.host, server.port).",
    }
    rpc_callbacks = frozenset(services("gos_web_socket.rpc_registry"))
    router = services("gos_web_socket.router")
    for path in write(router, folder, servers={"websocket": address}, rpc_callbacks=rpc_callbacks):
        out.write(f"wrote {path}\n")
    return EXIT_OK


def print_config(services: Services, out: TextIO) -> int:
    """``config``: the resolved settings as YAML, custom pushers' secrets masked."""
    settings = services("settings")
    tree = {"gos_web_socket": settings.model_dump(mode="json")}
    for name in settings.pushers.custom:
        node = tree["gos_web_socket"]["pushers"][name]
        for key in node:
            if any(word in key.lower() for word in SECRET_WORDS):
                node[key] = "**********"
    out.write(yaml.safe_dump(tree, sort_keys=False, default_flow_style=False))
    return EXIT_OK
