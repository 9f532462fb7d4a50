"""The Mercure hub on the server's port: ``GET`` subscribes (Server-Sent Events,
app/sse/subscribe.py), ``POST`` publishes (app/sse/publish.py), ``OPTIONS`` answers CORS
preflights.

The connection's gate hands over every plain HTTP request to ``paths`` (``Take``); the hub
answers it as a job of that connection (its requests in order, cancelled on stop).
"""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING, Any

from gos_web_socket.app.exceptions import (
    AuthenticationFailed,
    NotAuthorized,
    ProtocolError,
    RoutingError,
)
from gos_web_socket.app.sse.bodies import failure_response
from gos_web_socket.app.sse.subscribe import Subscriptions, discovery_link
from gos_web_socket.app.sse.tokens import MercureTokens
from gos_web_socket.app.web import Request, Response, encode_response

if TYPE_CHECKING:
    from gos_web_socket.app.server.broker import Broker
    from gos_web_socket.app.server.connection import WampConnection
    from gos_web_socket.app.server.gate import Take
    from gos_web_socket.app.sse.publish import Publisher
    from gos_web_socket.settings.models import Settings

logger = logging.getLogger(__name__)


class MercureHub:
    """Subscribe and publish over HTTP on the WebSocket port (``mercure`` settings)."""

    def __init__(self, settings: Settings, broker: Broker, publisher: Publisher) -> None:
        self.settings = settings.mercure
        self.broker = broker
        self.publisher = publisher
        tokens = MercureTokens(settings.authentication, settings.mercure)
        self.subscriptions = Subscriptions(settings.mercure, broker, publisher, tokens)

    @property
    def paths(self) -> frozenset[str]:
        if not self.settings.enabled:
            return frozenset()
        return frozenset({self.settings.path, self.settings.api_path})

    @property
    def max_body(self) -> int:
        return self.settings.max_body

    def link(self) -> str:
        """The discovery ``Link`` header's value."""
        return discovery_link(self.settings.path)

    # -- the gate hands over ----------------------------------------------------------------

    def take(self, connection: WampConnection, taken: Take) -> None:
        """Answer ``taken`` as a job of ``connection``."""
        connection.enqueue(partial(self._answer, connection, taken.request, taken.body))

    async def _answer(self, connection: WampConnection, request: Request, body: bytes) -> None:
        cors = self.cors(request)
        if request.method == "OPTIONS":
            connection.reply(encode_response(Response(204, headers=cors)))
            return
        try:
            if request.path == self.settings.api_path and request.method == "POST":
                response = await self.publisher.json_api(request, body)
            elif request.method == "POST":
                response = await self.publisher.form(request, body)
            elif request.method in ("GET", "HEAD"):
                await self.subscriptions.open(connection, request, cors)
                return
            else:
                response = Response(405, b"method not allowed\n", headers={"Allow": "GET, POST"})
        except (ProtocolError, AuthenticationFailed, NotAuthorized, RoutingError) as exc:
            response = failure_response(exc)
        except Exception as exc:  # the push failed (its push_fail fired): the server's fault
            logger.warning("%s %s failed: %r", request.method, request.path, exc)
            response = Response.text("the update could not be delivered\n", 500)
        response.headers.update(cors)
        response.headers["Link"] = self.link()
        connection.reply(encode_response(response, head_only=request.method == "HEAD"))

    def cors(self, request: Request) -> dict[str, str]:
        """CORS headers for an allowed ``Origin`` (``mercure.cors_origins``); none otherwise."""
        origin = request.headers.get("origin")
        allowed = self.settings.cors_origins
        if origin is None or not (origin in allowed or "*" in allowed):
            return {}
        headers = {
            "Access-Control-Allow-Origin": origin if "*" not in allowed else "*",
            "Access-Control-Expose-Headers": "Link, Last-Event-ID, Mercure-Last-Event-ID",
            "Vary": "Origin",
        }
        if "*" not in allowed:  # never a wildcard with credentials
            headers["Access-Control-Allow-Credentials"] = "true"
        if request.method == "OPTIONS":
            headers["Access-Control-Allow-Methods"] = "GET, HEAD, POST, OPTIONS"
            headers["Access-Control-Allow-Headers"] = (
                "authorization, cache-control, last-event-id, content-type"
            )
        return headers

    def stats(self) -> dict[str, Any]:
        return self.subscriptions.stats()
