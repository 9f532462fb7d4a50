"""The command line (``gos-websocket``): server, push, routes, config, health, presence.

The composition root (``app/__main__.py``) hands in a ``Services`` factory, so this package
parses arguments and runs commands without knowing how the container is built. One module per
group of commands, each adding its own sub-parsers (``add_commands``) and running them:
``server`` (server, worker), ``push``, ``catalogue`` (routes, config, catalogue), ``ops``
(health, presence); ``base`` holds what they share. Every failure ends as one line on stderr
(``config error: ...`` exit 2, ``error: ...`` exit 1), never a traceback unless ``--verbose``
asks for one.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from gos_web_socket.app.cli import catalogue, ops, push, server
from gos_web_socket.app.cli.base import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    ServicesFactory,
    common_options,
    one_line,
)
from gos_web_socket.app.exceptions import (
    ConfigurationError,
    GosWebSocketError,
    PortsTaken,
    RoutingError,
)
from gos_web_socket.app.logs import configure_logging
from gos_web_socket.app.workers import worker_overrides
from gos_web_socket.settings.models import LoggingSettings

logger = logging.getLogger(__name__)

ONE_SHOT_COMMANDS = frozenset({"push", "routes", "config", "health", "catalogue", "presence"})
QUIET_LOGGERS = (
    "aio_pika",
    "aiormq",
    "pamqp",
    "autobahn",
    "txaio",
    "zmq",
    "gos_web_socket.app.transports",
    "gos_web_socket.app.router",  # `routes --match`: its error line says it already
)
"""Broker and WebSocket clients and our pushers: their retry chatter is silenced for one-shot
commands, where the command's own error line says what failed (``-v`` shows them again)."""


def installed_version() -> str:
    """The installed distribution's version (pyproject.toml's, through its metadata)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gos-web-socket")
    except PackageNotFoundError:  # run from a copy of the sources that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every group's sub-commands."""
    common = common_options(top_level=False)
    parser = argparse.ArgumentParser(
        prog="gos-websocket",
        description="WAMP v1 WebSocket server with AMQP, ZeroMQ and WAMP pushers.",
        parents=[common_options(top_level=True)],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {installed_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (server, push, catalogue, ops):
        group.add_commands(commands, common)
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Options that set a settings key, as a nested tree: validated like the file's values."""
    keys = ("host", "port", "container")  # server, worker and health (container: not health)
    values = {key: getattr(args, key, None) for key in keys}
    given = {key: value for key, value in values.items() if value is not None}
    if not given:
        return {}
    if args.command in ops.COMMANDS:
        return {"server": {"metrics": given}}
    return {"server": given}


def _run(
    args: argparse.Namespace, services_factory: ServicesFactory, out: TextIO, err: TextIO
) -> int:
    """Build the services and run the command (its errors are the caller's)."""
    profile = args.command in server.COMMANDS and args.profile
    role = server.worker_role(args)
    overrides = _overrides(args)
    if role is not None:
        overrides = {"server": {**overrides["server"], **worker_overrides(role)["server"]}}
    if role is None:  # a factory written before workers takes three arguments
        services = services_factory(args.config, overrides, profile)
    else:
        services = services_factory(args.config, overrides, profile, worker=role)
    configure_logging(services("settings").logging, args.verbose, err)
    if args.command == "routes":
        return catalogue.print_routes(services, args.match, out)
    if args.command == "config":
        return catalogue.print_config(services, out)
    if args.command == "catalogue":
        return catalogue.write_catalogue(services, args.out, out)
    if args.command == "health":
        return ops.health(services, args, out, err)
    if args.command == "presence":
        return ops.presence(services, args, out, err)
    if args.command == "push":
        return asyncio.run(push.push(services, args, out))
    return server.serve(services, args, role)


def main(
    argv: Sequence[str] | None,
    services_factory: ServicesFactory,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Run one command; returns the exit code (2 for bad config or usage, 1 for failures)."""
    args = build_parser().parse_args(argv)
    # Default log format until the settings are read (a deprecated key is logged while reading).
    configure_logging(LoggingSettings(), args.verbose, err)
    if args.command in ONE_SHOT_COMMANDS and not args.verbose:
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    try:
        return _run(args, services_factory, out, err)
    except ConfigurationError as exc:
        for problem in exc.problems:
            err.write(f"config error: {one_line(problem)}\n")
        return EXIT_USAGE
    except PortsTaken as exc:
        for problem in exc.problems:
            err.write(f"error: {one_line(problem)}\n")
        return EXIT_FAILURE
    except RoutingError as exc:
        err.write(f"routing error: {one_line(exc)}\n")
        return EXIT_FAILURE
    except (GosWebSocketError, OSError) as exc:  # OSError: e.g. the port is taken
        err.write(f"error: {one_line(exc)}\n")
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_OK
    except Exception as exc:  # a bug or a library's own error: still one line, unless -v
        if args.verbose:
            logger.exception("%s failed", args.command)
        err.write(f"error: {type(exc).__name__}: {one_line(exc)}\n")
        return EXIT_FAILURE
