"""Whether a route's ``options.auth`` rule lets a connection use a verb on a URI.

One place for every verb of both sessions (the broker, presence queries, client procedures):
the route match, the rule, the refusal logged and answered the same way.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from gos_web_socket.app.auth.authorization import RouteRules
from gos_web_socket.app.exceptions import NotAuthorized, ResourceNotFound
from gos_web_socket.app.server.session import Failure

if TYPE_CHECKING:
    from gos_web_socket.app.router import Router, WampRequest
    from gos_web_socket.app.server.connection import WampConnection

logger = logging.getLogger(__name__)


class VerbGate:
    """The routes and their rules: who may subscribe, publish, call and register where."""

    def __init__(self, router: Router, rules: RouteRules | None = None) -> None:
        self.router = router
        self.rules = RouteRules.from_router(router) if rules is None else rules
        """Each route's ``options.auth``: who may subscribe, publish, call and register."""

    def refused(self, verb: str, connection: WampConnection, request: WampRequest) -> str | None:
        """Why the route's rule refuses ``verb`` to this connection's user; None: allowed."""
        rule = self.rules.refusal(verb, connection.user, request)
        if rule is None:
            return None
        logger.info(
            "%s on %s refused to connection %s: route %s allows %s",
            verb,
            request.matched,
            connection.session_id,
            request.route_name,
            rule,
            extra={"conn_id": connection.session_id, "route": request.route_name},
        )
        return f"not authorized: {verb} on {request.matched} needs {rule}"

    @staticmethod
    def not_authorized(uri: str, desc: str) -> Failure:
        return Failure(uri, desc, {"code": 403}, error=NotAuthorized(desc))

    def allowed(self, verb: str, connection: WampConnection, uri: str) -> WampRequest | Failure:
        """The route of ``uri`` once its ``verb`` rule allowed this connection; else why not
        (no route, or not authorized)."""
        try:
            request = self.router.match(uri)
        except ResourceNotFound as exc:
            return Failure(uri, str(exc), {}, no_route=True, error=exc)
        refused = self.refused(verb, connection, request)
        if refused is not None:
            return self.not_authorized(uri, refused)
        return request
