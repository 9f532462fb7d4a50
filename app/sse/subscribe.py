"""SSE subscribers: a ``GET`` of the hub checked (selectors, token, routes), what a
``Last-Event-ID`` missed replayed, then the stream opened on the connection.

An SSE subscriber is a ``WampConnection`` whose session is an ``SseSession`` (stream.py):
topics write to it through the same fan-out as to WAMP clients. An exact topic is subscribed
through the ``Broker`` (it needs a route: docs/sse.md has a catch-all); ``*``, templates and URL
patterns join every channel they match, live ones now and new ones as they appear
(``TopicManager.watch``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from gos_web_socket.app.exceptions import (
    AuthenticationFailed,
    LimitExceeded,
    NotAuthorized,
    ProtocolError,
    ResourceNotFound,
)
from gos_web_socket.app.server.session import Failure
from gos_web_socket.app.sse import stream
from gos_web_socket.app.sse.bodies import failure_response
from gos_web_socket.app.sse.selectors import Selectors
from gos_web_socket.app.sse.tokens import Grant, MercureTokens
from gos_web_socket.app.sse.wire import COMMENT, SseFormat
from gos_web_socket.app.web import Request, encode_response

if TYPE_CHECKING:
    from gos_web_socket.app.server.broker import Broker
    from gos_web_socket.app.server.connection import WampConnection
    from gos_web_socket.app.server.topic import Topic
    from gos_web_socket.app.sse.publish import Publisher
    from gos_web_socket.settings.mercure import MercureSettings

EARLIEST = "earliest"
STREAM_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "private, no-cache, no-store, must-revalidate, max-age=0",
    "Pragma": "no-cache",
    "Expires": "0",
    "X-Accel-Buffering": "no",
    "Connection": "close",
}


def discovery_link(path: str) -> str:
    """The discovery ``Link`` header's value for the hub at ``path``."""
    return f'<{path}>; rel="mercure"'


class Subscriptions:
    """Opens the hub's SSE streams (``mercure`` settings) and counts them."""

    def __init__(
        self,
        settings: MercureSettings,
        broker: Broker,
        publisher: Publisher,
        tokens: MercureTokens,
    ) -> None:
        self.settings = settings
        self.broker = broker
        self.publisher = publisher
        """Where ``Last-Event-ID`` is turned into a position (publisher-given ids)."""
        self.tokens = tokens
        self.wide = stream.WideSubscribers(broker)
        """Subscribers with ``*``, templates or patterns."""
        self.subscribers_total = 0
        broker.manager.watch(self.wide.joins)

    def grant(self, request: Request) -> Grant | None:
        """The subscriber's token grant (None: anonymous).

        Raises:
            AuthenticationFailed: a bad token, or none where ``mercure.anonymous`` is off.
        """
        grant = self.tokens.grant(request.headers, "subscribe")
        if grant is None and not self.settings.anonymous:
            raise AuthenticationFailed("missing", "a subscriber token is required")
        return grant

    async def open(
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
        headers = {**STREAM_HEADERS, **cors, "Link": discovery_link(self.settings.path)}
        if request.method == "HEAD":
            connection.reply(encode_stream_head(headers))
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
