"""Where a Mercure update goes: the routes of its topics, and whether a private one may go there.

Both are checks made before anything is published (a form ``POST`` is refused whole), and
both read only the router and the topic handlers: kept out of ``Publisher`` (publish.py),
which turns the checked update into pushes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from gos_web_socket.app.exceptions import ProtocolError, ResourceNotFound
from gos_web_socket.app.sse.relay import MercureRelay, open_to_anyone

if TYPE_CHECKING:
    from gos_web_socket.app.router import Router, WampRequest
    from gos_web_socket.app.server.handlers import TopicHandler

__all__ = ["check_private", "update_routes"]


def update_routes(router: Router, topics: list[str]) -> list[WampRequest]:
    """The route of each topic's channel, once per channel; topics without one are skipped,
    unless none has one.

    Raises:
        ResourceNotFound: no topic matches a route.
    """
    routed: dict[str, WampRequest] = {}
    last: ResourceNotFound | None = None
    for topic in topics:
        try:
            routed.setdefault(topic, router.match(topic))
        except ResourceNotFound as exc:
            last = exc
    if not routed:
        assert last is not None
        raise ResourceNotFound(f"{last} Add a route for it (docs/sse.md: catch-all route).")
    return list(routed.values())


def check_private(routed: list[WampRequest], handlers: Mapping[str, TopicHandler]) -> None:
    """A private update goes only where it stays private: a ``mercure.relay`` route (it keeps
    it to the allowed SSE subscribers) or a route stricter than ``anyone``; another handler
    would broadcast it (and its history keep it) for anonymous WAMP clients.

    Raises:
        ProtocolError: a topic's route is neither (400, before anything is published).
    """
    for request in routed:
        handler = handlers.get(request.route.callback)
        if open_to_anyone(request) and not isinstance(handler, MercureRelay):
            raise ProtocolError(
                f"a private update cannot go to {request.matched!r}: its route "
                f"{request.route_name!r} lets anyone subscribe and its handler is not "
                "mercure.relay (allowed: a mercure.relay route, or a subscribe rule "
                "stricter than 'anyone')"
            )
