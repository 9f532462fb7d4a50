"""The queries to a running server's ops listener: ``health`` and ``presence``."""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from gos_web_socket.app.cli.base import EXIT_FAILURE, EXIT_OK, Services, port_number

COMMANDS = frozenset({"health", "presence"})
"""Their ``-a``/``-p`` set ``server.metrics``, not ``server``."""


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """``health`` and ``presence`` on ``commands`` (argparse's sub-parsers)."""
    health = commands.add_parser("health", parents=[common], help="ask a running server if ready")
    presence = commands.add_parser(
        "presence", parents=[common], help="who is in a presence channel of a running server"
    )
    presence.add_argument("channel", metavar="CHANNEL")
    for query in (health, presence):
        query.add_argument(
            "-a", "--host", help="metrics listener address (default: server.metrics.host)"
        )
        query.add_argument(
            "-p",
            "--port",
            type=port_number,
            help="metrics listener port (default: server.metrics.port)",
        )
        query.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS")


def health(services: Services, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``GET /health`` on the running server's ops listener: its answer, exit 0 when ready."""
    from gos_web_socket.app.ops import (
        check_health,  # imported here: the other commands need no HTTP client
    )

    metrics = services("settings").server.metrics  # -a / -p are already merged in
    host, port = metrics.host, metrics.port
    try:
        status, body = check_health(host, port, args.timeout)
    except OSError as exc:
        err.write(f"not healthy: no server answering at {host}:{port} ({exc})\n")
        return EXIT_FAILURE
    out.write(json.dumps(body, indent=2) + "\n")
    return EXIT_OK if status == 200 else EXIT_FAILURE


def presence(services: Services, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``GET /presence?channel=`` on the running server's ops listener, printed as JSON."""
    from gos_web_socket.app.http_client import get_sync
    from gos_web_socket.app.presence.http import presence_path

    metrics = services("settings").server.metrics  # -a / -p are already merged in
    host, port = metrics.host, metrics.port
    try:
        status, body = get_sync(host, port, presence_path(args.channel), args.timeout)
    except OSError as exc:
        err.write(f"no server answering at {host}:{port} ({exc})\n")
        return EXIT_FAILURE
    try:
        out.write(json.dumps(json.loads(body), indent=2) + "\n")
    except ValueError:
        err.write(f"http://{host}:{port}/presence answered {status} without JSON\n")
        return EXIT_FAILURE
    return EXIT_OK if status == 200 else EXIT_FAILURE
