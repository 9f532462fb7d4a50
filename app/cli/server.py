"""``server`` and ``worker``: run the WebSocket server, alone or as one of its workers."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

from gos_web_socket.app.cli.base import EXIT_OK, Services, port_number
from gos_web_socket.app.lifecycle import check_ports, event_loop_factory
from gos_web_socket.app.worker_link import ParentLink
from gos_web_socket.app.workers import WorkerCommand, WorkerRole, check_workers

logger = logging.getLogger(__package__)
"""The command line's logger, as before it was a package: log lines keep ``logger=``."""

COMMANDS = frozenset({"server", "worker"})


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """``server`` and ``worker`` on ``commands`` (argparse's sub-parsers)."""
    server = commands.add_parser("server", parents=[common], help="run the WebSocket server")
    server.add_argument("-a", "--host", help="address to listen on (default: server.host)")
    server.add_argument("-p", "--port", type=port_number, help="port (default: server.port)")
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
    worker.add_argument("-p", "--port", type=port_number, required=True, help="the shared port")
    worker.add_argument("-m", "--profile", action="store_true", help="profile report")
    worker.add_argument("--container", metavar="MODULE:CLASS", help="your container")


def worker_role(args: argparse.Namespace) -> WorkerRole | None:
    """The slot this process fills when the command is ``worker``; None otherwise."""
    if args.command != "worker":
        return None
    return WorkerRole(args.index, args.link_fd, args.port, args.fanout)


def serve(services: Services, args: argparse.Namespace, role: WorkerRole | None) -> int:
    """Run the server: one worker (``role``), the parent of ``server.workers``, or alone."""
    if role is not None:
        return _run_loop(services, lambda: _serve_worker(services, role))
    settings = services("settings")
    # Config errors the container finds (a pushers.<name> no transport reads) come before the
    # ports: a typo is reported as itself, not as a port another program happens to hold.
    services("gos_web_socket.pusher_registry")
    if settings.server.worker_count > 1:
        check_workers(settings)
        pool = services("gos_web_socket.worker_pool")
        return _run_loop(services, lambda: pool.run(_worker_command(args)))
    check_ports(settings)  # every taken port at once (workers: the first worker says)
    return _run_loop(services, lambda: _serve(services))


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
