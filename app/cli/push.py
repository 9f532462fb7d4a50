"""``push``: one push to a route's topic through one of the configured pushers."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from gos_web_socket.app.cli.base import EXIT_OK, PUSH_TARGETS, Services, json_value, key_value
from gos_web_socket.app.exceptions import ConfigurationError, InvalidPushArgument


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """``push`` on ``commands`` (argparse's sub-parsers)."""
    push = commands.add_parser("push", parents=[common], help="push data to a route's topic")
    push.add_argument("route", help="route name, e.g. acme_topic")
    push.add_argument(
        "-p", "--param", type=key_value, action="append", default=[], metavar="KEY=VALUE"
    )
    push.add_argument("-d", "--data", type=json_value, default={}, metavar="JSON", help="push data")
    push.add_argument("--pusher", default=None, metavar="NAME", help="pusher alias (amqp, ...)")
    push.add_argument("--context", type=json_value, default={}, metavar="JSON")


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


async def push(services: Services, args: argparse.Namespace, out: TextIO) -> int:
    """Push ``--data`` to the route through ``--pusher`` (default: the first enabled one)."""
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
