"""The Mercure hub on the server's port: ``GET`` subscribes (Server-Sent Events), ``POST``
publishes (app/sse/publish.py), ``OPTIONS`` answers CORS preflights.

The connection's gate hands over every plain HTTP request to ``paths`` (``Take``); the hub
answers it as a job of that connection (its requests in order, cancelled on stop). An SSE
subscriber is a ``WampConnection`` whose session is an ``SseSession`` (stream.py): topics write
to it through the same fan-out as to WAMP clients. Topics are channels: an exact topic is
subscribed through the ``Broker`` (it needs a route: docs/sse.md has a catch-all); ``*``,
templates and URL patterns join every channel they match, live ones now and new ones as they
appear (``TopicManager.watch``).
"""

from __future__ import annotations

import logging
import time
from functools import partial
from typing import TYPE_CHECKING, Any

from gos_web_socket.app.exceptions import (
    AuthenticationFailed,
    FirewallRejection,
    LimitExceeded,
    MalformedCredentials,
    NotAuthorized,
    ProtocolError,
    ResourceNotFound,
    RoutingError,
)
from gos_web_socket.app.server.session import Failure
from gos_web_socket.app.sse import stream
from gos_web_socket.app.sse.selectors import Selectors
from gos_web_socket.app.sse.tokens import Grant, MercureTokens
from gos_web_socket.app.sse.wire import COMMENT, SseFormat
from gos_web_socket.app.web import Request, Response, encode_response

if TYPE_CHECKING:
    from gos_web_socket.app.server.broker import Broker
    from gos_web_socket.app.server.connection import WampConnection
    from gos_web_socket.app.server.gate import Take
    from gos_web_socket.app.server.topic import Topic
    from gos_web_socket.app.sse.publish import Publisher
    from gos_web_socket.settings.models import Settings

logger = logging.getLogger(__name__)

EARLIEST = "earliest"
STREAM_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "private, no-cache, no-store, must-revalidate, max-age=0",
    "Pragma": "no-cache",
    "Expires": "0",
    "X-Accel-Buffering": "no",
    "Connection": "close",
}


def failure_response(error: Exception) -> Response:
    """The protocol's status for an error: 400 malformed (``invalid_request`` for a malformed
    ``Authorization``), 401 bad token (a bare challenge when there was none), 403 refused (a
    grant, a route's rule or a topic's ``secure()``), 500 anything else (a topic hook's error)."""
    if isinstance(error, AuthenticationFailed):
        response = Response.text("invalid token\n", 401)  # no reason: it helps forgers
        missing = error.reason == "missing"
        response.headers["WWW-Authenticate"] = (
            "Bearer" if missing else 'Bearer error="invalid_token"'
        )
    elif isinstance(error, FirewallRejection):
        response = Response.text(f"{error}\n", 403)
        response.headers["WWW-Authenticate"] = 'Bearer error="insufficient_scope"'
    elif isinstance(error, MalformedCredentials):
        response = Response.text(f"{error}\n", 400)
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_request"'
    elif isinstance(error, ProtocolError | RoutingError):
        response = Response.text(f"{error}\n", 400)
    else:
        logger.warning("subscribe failed: %r", error)
        response = Response.text("the subscription could not be made\n", 500)
    return response


class MercureHub:
    """Subscribe and publish over HTTP on the WebSocket port (``mercure`` settings)."""

    def __init__(self, settings: Settings, broker: Broker, publisher: Publisher) -> None:
        self.settings = settings.mercure
        self.broker = broker
        self.publisher = publisher
        self.tokens = MercureTokens(settings.authentication, settings.mercure)
        self.wide = stream.WideSubscribers(broker)
        """Subscribers with ``*``, templates or patterns."""
        self.subscribers_total = 0
        broker.manager.watch(self.wide.joins)

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
        return f'<{self.settings.path}>; rel="mercure"'

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
                await self.subscribe(connection, request, cors)
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

    # -- subscribe ----------------------------------------------------------------------------

    def grant(self, request: Request) -> Grant | None:
        """The subscriber's token grant (None: anonymous).

        Raises:
            AuthenticationFailed: a bad token, or none where ``mercure.anonymous`` is off.
        """
        grant = self.tokens.grant(request.headers, "subscribe")
        if grant is None and not self.settings.anonymous:
            raise AuthenticationFailed("missing", "a subscriber token is required")
        return grant

    async def subscribe(
        self, connection: WampConnection, request: Request, cors: dict[str, str]
    ) -> None:
        """Open the stream: check everything that can refuse it first (an HTTP error then),
        replay what a ``Last-Event-ID`` missed, then stream."""
        query = request.query
        try:
            selectors = Selectors.parse(
                query.get("topic", []) + query.get("match", []), query.get("match_urlpattern", [])
            )
            if not (selectors.exact or selectors.wide):
                raise ProtocolError('Missing "topic" parameter.')
            grant = self.grant(request)
            requests = [self.broker.router.match(topic) for topic in sorted(selectors.exact)]
        except (ProtocolError, AuthenticationFailed, ResourceNotFound) as exc:
            response = failure_response(exc)
            response.headers.update(cors)
            connection.reply(encode_response(response))
            return
        if request.method == "HEAD":
            connection.reply(encode_stream_head({**STREAM_HEADERS, **cors, "Link": self.link()}))
            return
        if grant is not None:
            connection.user = grant.user
        wire = SseFormat(None if grant is None else grant.selectors)
        connection.session = session = stream.SseSession(connection, wire)
        cursor = self.cursor(request)
        try:
            refused = await self._join(
                connection, [r.matched for r in requests], cursor is not None
            )
        except ProtocolError as exc:  # server.limits.max_subscriptions
            refused = exc
        if refused is not None:
            response = failure_response(refused)
            response.headers.update(cors)
            connection.reply(encode_response(response))
            return
        held = [entry[0] for entry in connection.subscriptions.values()]
        headers = {**STREAM_HEADERS, **cors, "Link": self.link()}
        frames: list[bytes] = []
        reached = None
        try:
            if cursor is not None:
                complete = False
                since = self.publisher.position_of(cursor, held)
                if since is not None:
                    frames, complete, reached = await stream.replay(
                        self.broker, connection, held, since
                    )
                # wide selectors replay nothing: their channels are not known in advance
                answer = cursor if complete and not selectors.wide else EARLIEST
                headers["Last-Event-ID"] = headers["Mercure-Last-Event-ID"] = answer
            head = encode_stream_head(headers)
            if not connection.open_stream(session, head + COMMENT):
                await self.abandon(connection)  # gone before its stream opened
                return
            self.subscribers_total += 1
            if selectors.wide:
                self.wide.add(connection, selectors)
            await connection.write_paced(frames)
        except Exception:
            if not connection.opened:  # the replay failed: a 500, and nothing kept
                await self.abandon(connection)
            raise
        finally:
            if cursor is not None:
                stream.release(connection, held, reached)
        if connection.closed:  # gone during the replay: its timers were stopped
            return
        if self.settings.heartbeat > 0:
            connection.timers.add("heartbeat", self.settings.heartbeat, session.heartbeat)
        if grant is not None and grant.expires_at is not None:  # the stream ends with the token
            delay = max(0.0, grant.expires_at - time.time())
            connection.timers.add("token-expiry", delay or 0.001, connection.close)

    def cursor(self, request: Request) -> str | None:
        """``Last-Event-ID`` from the header, else the ``lastEventID``/``last_event_id`` query."""
        header = request.headers.get("last-event-id")
        if header is not None:
            return header
        for name in ("lastEventID", "last_event_id", "Last-Event-ID"):
            values = request.query.get(name)
            if values:
                return values[0]
        return None

    async def _join(
        self, connection: WampConnection, channels: list[str], hold: bool
    ) -> Exception | None:
        """Subscribe to each exact channel (held when replaying); the first refusal. All or
        nothing: the channels are counted against ``max_subscriptions`` before any is joined,
        and a refusal or an error leaves the ones joined."""
        limit = connection.limits.max_subscriptions
        if len(channels) > limit:
            return LimitExceeded("max_subscriptions", f"more than {limit} subscriptions")
        try:
            for channel in channels:

                def accepted(topic: Topic) -> None:
                    if hold:
                        topic.hold(connection)

                outcome = await self.broker.subscribe(connection, channel, accepted)
                if isinstance(outcome, Failure):
                    await self.abandon(connection)
                    return outcome.error or NotAuthorized(outcome.desc)
        except Exception:
            await self.abandon(connection)
            raise
        return None

    async def abandon(self, connection: WampConnection) -> None:
        """Drop what a subscriber whose stream will not open holds: its held buffers and its
        memberships (the lifecycle's ``gone`` leaves only connections that opened)."""
        for topic, _ in list(connection.subscriptions.values()):
            topic.release(connection)
        await self.broker.leave(connection)

    def stats(self) -> dict[str, Any]:
        return {"sse_subscribers_total": self.subscribers_total, "wide": len(self.wide.subscribers)}


def encode_stream_head(headers: dict[str, str]) -> bytes:
    """The head of a 200 streamed without a length (the connection ends the response)."""
    lines = ["HTTP/1.1 200 OK", *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
