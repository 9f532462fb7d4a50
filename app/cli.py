"""The command line (``gos-websocket``): server, push, routes, config, health, presence.

The composition root (``app/__main__.py``) hands in a ``Services`` factory, so this module
parses arguments and runs commands without knowing how the container is built. Every failure
ends as one line on stderr (``config error: ...`` exit 2, ``error: ...`` exit 1), never a traceback
unless ``--verbose`` asks for one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TextIO

import yaml

from gos_web_socket.app.exceptions import (
    ConfigurationError,
    GosWebSocketError,
    InvalidPushArgument,
    PortsTaken,
    RoutingError,
)
from gos_web_socket.app.lifecycle import check_ports, event_loop_factory
from gos_web_socket.app.logs import configure_logging
from gos_web_socket.app.workers import (
    ParentLink,
    WorkerCommand,
    WorkerRole,
    check_workers,
    worker_overrides,
)
from gos_web_socket.settings.models import LoggingSettings

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class Services(Protocol):
    """What the commands need from the container, by service id."""

    def __call__(self, service_id: str) -> Any: ...


class ServicesFactory(Protocol):
    """Builds the services from ``--config``, settings given on the command line and ``-m``.

    ``overrides`` is a nested settings tree (``{"server": {"port": 8080}}``) that beats the
    file and the environment. Raises ConfigurationError.
    """

    def __call__(
        self,
        config: Path | None,
        overrides: Mapping[str, Any],
        profile: bool,
        worker: WorkerRole | None = None,
    ) -> Services: ...


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


def _port(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError("The port option must be a numeric value.")
    return int(value)


def _key_value(value: str) -> tuple[str, str]:
    key, sep, val = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {value!r}")
    return key, val


def _json(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc}): {value!r}") from None


def _common(top_level: bool) -> argparse.ArgumentParser:
    # The sub-commands repeat these options with SUPPRESS defaults, so an option given before the
    # sub-command is not overwritten by the sub-parser's default.
    common = argparse.ArgumentParser(add_help=False)
    config_default: Any = None if top_level else argparse.SUPPRESS
    verbose_default: Any = False if top_level else argparse.SUPPRESS
    common.add_argument(
        "--config", type=Path, metavar="PATH", default=config_default, help="settings YAML file"
    )
    common.add_argument(
        "-v", "--verbose", action="store_true", default=verbose_default, help="debug logging"
    )
    return common


def installed_version() -> str:
    """The installed distribution's version (pyproject.toml's, through its metadata)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gos-web-socket")
    except PackageNotFoundError:  # run from a copy of the sources that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    common = _common(top_level=False)
    parser = argparse.ArgumentParser(
        prog="gos-websocket",
        description="WAMP v1 WebSocket server with AMQP, ZeroMQ and WAMP pushers.",
        parents=[_common(top_level=True)],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {installed_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    server = commands.add_parser("server", parents=[common], help="run the WebSocket server")
    server.add_argument("-a", "--host", help="address to listen on (default: server.host)")
    server.add_argument("-p", "--port", type=_port, help="port (default: server.port)")
    server.add_argument(
        "-m", "--profile", action="store_true", help="print memory, connections, pushes/s"
    )
    server.add_argument(
        "--container",
        metavar="MODULE:CLASS",
        help="your container, a subclass of containers.Container (default: server.container)",
    )

    worker = commands.add_parser(
        "worker",
        parents=[common],
        help="one process of a `server` with server.workers > 1 (the server starts these)",
    )
    worker.add_argument("--index", type=int, required=True, help="the worker's slot, from 0")
    worker.add_argument(
        "--link-fd", type=int, required=True, help="the parent's socket (reports, lifeline)"
    )
    worker.add_argument("--fanout", help="the parent's ZeroMQ fan-out endpoint (ipc://...)")
    worker.add_argument("-a", "--host", help="address to listen on")
    worker.add_argument("-p", "--port", type=_port, required=True, help="the shared port")
    worker.add_argument("-m", "--profile", action="store_true", help="profile report")
    worker.add_argument("--container", metavar="MODULE:CLASS", help="your container")

    push = commands.add_parser("push", parents=[common], help="push data to a route's topic")
    push.add_argument("route", help="route name, e.g. acme_topic")
    push.add_argument(
        "-p", "--param", type=_key_value, action="append", default=[], metavar="KEY=VALUE"
    )
    push.add_argument("-d", "--data", type=_json, default={}, metavar="JSON", help="push data")
    push.add_argument("--pusher", default=None, metavar="NAME", help="pusher alias (amqp, ...)")
    push.add_argument("--context", type=_json, default={}, metavar="JSON")

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

    health = commands.add_parser("health", parents=[common], help="ask a running server if ready")
    health.add_argument(
        "-a", "--host", help="metrics listener address (default: server.metrics.host)"
    )
    health.add_argument(
        "-p", "--port", type=_port, help="metrics listener port (default: server.metrics.port)"
    )
    health.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS")

    presence = commands.add_parser(
        "presence", parents=[common], help="who is in a presence channel of a running server"
    )
    presence.add_argument("channel", metavar="CHANNEL")
    presence.add_argument(
        "-a", "--host", help="metrics listener address (default: server.metrics.host)"
    )
    presence.add_argument(
        "-p", "--port", type=_port, help="metrics listener port (default: server.metrics.port)"
    )
    presence.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS")
    return parser


def _print_routes(services: Services, match: str | None, out: TextIO) -> int:
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


def _write_catalogue(services: Services, folder: Path, out: TextIO) -> int:
    """The routes as asyncapi.json/.yaml and channels.d.ts (app/catalogue/, docs/catalogue.md)."""
    from gos_web_socket.app.catalogue import write_catalogue

    server = services("settings").server
    address = {
        "host": f"{server.host}:{server.port}",
        "protocol": "wss" if server.tls.enabled else "ws",
        "description": "The WAMP v1/v2 WebSocket server (server.host, server.port).",
    }
    rpc_callbacks = frozenset(services("gos_web_socket.rpc_registry"))
    router = services("gos_web_socket.router")
    for path in write_catalogue(
        router, folder, servers={"websocket": address}, rpc_callbacks=rpc_callbacks
    ):
        out.write(f"wrote {path}\n")
    return EXIT_OK


SECRET_WORDS = ("password", "secret", "token")
"""Keys of custom pusher nodes masked by `config` (their models are unknown here)."""


def _print_config(services: Services, out: TextIO) -> int:
    settings = services("settings")
    tree = {"gos_web_socket": settings.model_dump(mode="json")}
    for name in settings.pushers.custom:
        node = tree["gos_web_socket"]["pushers"][name]
        for key in node:
            if any(word in key.lower() for word in SECRET_WORDS):
                node[key] = "**********"
    out.write(yaml.safe_dump(tree, sort_keys=False, default_flow_style=False))
    return EXIT_OK


PUSH_TARGETS = "push_targets"
"""Not a container id: each route callback's kind, ``topic`` or ``rpc``, by callback name
(``app/__main__.py`` answers it without the server stack for the default container)."""


def check_push(services: Services, args: argparse.Namespace, pusher: Any) -> None:
    """Refuse a push the server would drop or that would lose a part without a word: a route
    whose callback is no topic, a parameter the route does not have, a ``--context`` for a
    transport that ignores it. Raises InvalidPushArgument naming what is allowed."""
    collection = services("gos_web_socket.router").collection
    route = collection.get(args.route)
    if route is None:
        return  # the pusher's RouteNotFound lists the routes
    kinds = services(PUSH_TARGETS)
    if kinds.get(route.callback) != "topic":
        kind = "an RPC handler" if kinds.get(route.callback) == "rpc" else "no topic"
        topics = [name for name, r in collection.items() if kinds.get(r.callback) == "topic"]
        raise InvalidPushArgument(
            f"route {args.route} calls {route.callback}, {kind}: pushes reach topics only "
            f"(routes to a topic: {', '.join(topics) or 'none'})"
        )
    variables = route.compile().variables
    unknown = sorted({key for key, _ in args.param} - set(variables))
    if unknown:
        raise InvalidPushArgument(
            f"unknown parameter(s) {', '.join(unknown)} for route {args.route} "
            f"(allowed: {', '.join(variables) or 'none'})"
        )
    if args.context and not pusher.reads_context:
        raise InvalidPushArgument(
            f"--context is ignored by the {args.pusher} pusher "
            "(allowed: a pusher that reads it, e.g. --pusher amqp)"
        )


async def _push(services: Services, args: argparse.Namespace, out: TextIO) -> int:
    registry = services("gos_web_socket.pusher_registry")
    if args.pusher is None:
        if not registry:
            raise ConfigurationError(["pushers: no pusher is enabled"])
        args.pusher = next(iter(registry))
    pusher = registry[args.pusher]
    check_push(services, args, pusher)
    try:
        await pusher.push(args.data, args.route, dict(args.param), args.context)
    finally:
        await pusher.close()
    out.write(f"pushed to {args.route} through {args.pusher}\n")
    return EXIT_OK


def _health(services: Services, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
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


def _presence(services: Services, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
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


def _log_loop() -> None:
    """Once started: a config error before that stays the only line."""
    logger.info("event loop: %s", type(asyncio.get_running_loop()).__module__.partition(".")[0])


async def _serve(services: Services) -> int:
    await services("gos_web_socket.runtime").run(on_ready=_log_loop)
    return EXIT_OK


async def _serve_worker(services: Services, role: WorkerRole) -> int:
    """One worker: the usual runtime, reporting to the parent and stopping when it is gone."""
    from gos_web_socket.app.presence.peers import attach_worker
    from gos_web_socket.app.sse.workers import attach_worker as attach_publishes

    link: ParentLink = services("gos_web_socket.parent_link")
    runtime = services("gos_web_socket.runtime")  # its dealer reads the link's relay lines
    ops = services("gos_web_socket.ops")
    # presence between workers rides the same link (app/presence/peers.py)
    attach_worker(services("gos_web_socket.presence"), link, role.index, services("settings"))
    # and HTTP publishes, numbered by the parent for every worker (app/sse/workers.py)
    publisher = services("gos_web_socket.mercure_publisher")
    publisher.peers = attach_publishes(publisher, link, role.index)
    link.on_parent_gone(runtime.stop_soon)
    try:

        def ready() -> None:
            _log_loop()
            link.report(ops.port if ops.http.running else None)

        await runtime.run(on_ready=ready)
    finally:
        link.close()
    return EXIT_OK


def _worker_command(args: argparse.Namespace) -> WorkerCommand:
    """How the parent starts a worker: this program with the server's own options."""

    def command(role: WorkerRole) -> list[str]:
        argv = [sys.executable, "-m", "gos_web_socket.app"]
        if args.config is not None:
            argv += ["--config", str(args.config)]
        if args.verbose:
            argv.append("-v")
        argv += ["worker", "--index", str(role.index), "--link-fd", str(role.link_fd)]
        argv += ["-p", str(role.port)]
        if role.fanout is not None:
            argv += ["--fanout", role.fanout]
        if args.host is not None:
            argv += ["-a", args.host]
        if args.container is not None:
            argv += ["--container", args.container]
        if args.profile:
            argv.append("-m")
        return argv

    return command


def _run_loop(services: Services, main: Any) -> int:
    """Run the coroutine ``main()`` on the loop ``server.event_loop`` chooses."""
    factory = event_loop_factory(services("settings").server.event_loop)
    with asyncio.Runner(loop_factory=factory) as runner:
        result: int = runner.run(main())
        return result


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Options that set a settings key, as a nested tree: validated like the file's values."""
    keys = ("host", "port", "container")  # server, worker and health (container: not health)
    values = {key: getattr(args, key, None) for key in keys}
    given = {key: value for key, value in values.items() if value is not None}
    if not given:
        return {}
    if args.command in ("health", "presence"):
        return {"server": {"metrics": given}}
    return {"server": given}


def _worker_role(args: argparse.Namespace) -> WorkerRole | None:
    if args.command != "worker":
        return None
    return WorkerRole(args.index, args.link_fd, args.port, args.fanout)


def _one_line(text: object) -> str:
    return " ".join(str(text).splitlines())


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
    profile = args.command in ("server", "worker") and args.profile
    role = _worker_role(args)
    try:
        overrides = _overrides(args)
        if role is not None:
            overrides = {"server": {**overrides["server"], **worker_overrides(role)["server"]}}
        if role is None:  # a factory written before workers takes three arguments
            services = services_factory(args.config, overrides, profile)
        else:
            services = services_factory(args.config, overrides, profile, worker=role)
        configure_logging(services("settings").logging, args.verbose, err)
        if args.command == "routes":
            return _print_routes(services, args.match, out)
        if args.command == "config":
            return _print_config(services, out)
        if args.command == "catalogue":
            return _write_catalogue(services, args.out, out)
        if args.command == "health":
            return _health(services, args, out, err)
        if args.command == "presence":
            return _presence(services, args, out, err)
        if args.command == "push":
            return asyncio.run(_push(services, args, out))
        if role is not None:
            return _run_loop(services, lambda: _serve_worker(services, role))
        settings = services("settings")
        if settings.server.worker_count > 1:
            check_workers(settings)
            pool = services("gos_web_socket.worker_pool")
            return _run_loop(services, lambda: pool.run(_worker_command(args)))
        check_ports(settings)  # every taken port at once (workers: the first worker says)
        return _run_loop(services, lambda: _serve(services))
    except ConfigurationError as exc:
        for problem in exc.problems:
            err.write(f"config error: {_one_line(problem)}\n")
        return EXIT_USAGE
    except PortsTaken as exc:
        for problem in exc.problems:
            err.write(f"error: {_one_line(problem)}\n")
        return EXIT_FAILURE
    except RoutingError as exc:
        err.write(f"routing error: {_one_line(exc)}\n")
        return EXIT_FAILURE
    except (GosWebSocketError, OSError) as exc:  # OSError: e.g. the port is taken
        err.write(f"error: {_one_line(exc)}\n")
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_OK
    except Exception as exc:  # a bug or a library's own error: still one line, unless -v
        if args.verbose:
            logger.exception("%s failed", args.command)
        err.write(f"error: {type(exc).__name__}: {_one_line(exc)}\n")
        return EXIT_FAILURE
