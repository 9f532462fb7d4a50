"""One WAMP v1 client connection on autobahn's asyncio WebSocket protocol.

What the GOS clients need and autobahn does not do by itself:

- WELCOME leaves in the same ``transport.write`` as the 101 (the PHP client reads once);
- an ``Origin`` without a scheme (``Origin: 127.0.0.1``, the PHP client) is accepted;
- the ``wamp`` subprotocol is chosen when offered, and a handshake offering none is accepted;
- frames that break WAMP close only this connection, with 1007 and one log line;
- a client whose unsent output passes ``max_outgoing_buffer`` is cut off.

A client offering ``wamp.2.json`` or ``wamp.2.msgpack`` (before ``wamp`` in its list) speaks
WAMP v2 instead: its messages go to a ``Wamp2Session`` (app/server/wamp2.py).

Messages of one connection are handled in arrival order by a short-lived worker task,
so a user hook that awaits never lets a later PUBLISH overtake the SUBSCRIBE before it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from autobahn.asyncio.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny, ConnectionRequest

from app.events import (
    CLIENT_CONNECTED,
    CLIENT_DISCONNECTED,
    CLIENT_ERROR,
    CLIENT_REJECTED,
    CONNECTION_REJECTED,
    ClientConnectedEvent,
    ClientDisconnectedEvent,
    ClientErrorEvent,
    ClientRejectedEvent,
    ConnectionRejectedEvent,
)
from app.exceptions import ProtocolError, ResourceNotFound
from app.message import dumps
from app.server.timers import PeriodicTimers
from app.server.wamp2 import Serializer, Wamp2Session, new_session_id

if TYPE_CHECKING:
    from app.router import WampRequest
    from app.server.server import WampServer
    from app.server.topic import Topic

logger = logging.getLogger(__name__)

WELCOME, PREFIX, CALL, CALLRESULT, CALLERROR = 0, 1, 2, 3, 4
SUBSCRIBE, UNSUBSCRIBE, PUBLISH, EVENT = 5, 6, 7, 8
SUBPROTOCOL = "wamp"
SERVER_IDENT = "GosWebSocket-Python/0.1"
"""Sent in WELCOME; like every WELCOME field it must not contain ``[`` or ``]`` (PHP client)."""

CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_INVALID_PAYLOAD = 1007
_STATE_OPEN = WebSocketServerProtocol.STATE_OPEN

Job = Callable[[], Awaitable[None]]


def origin_host(origin: str) -> str:
    """The host part of an Origin header, falling back to the raw value (GOS's OriginCheck).

    A value without a scheme (``127.0.0.1:8080``, from the PHP client) is read as a host.
    """
    try:
        host = urlsplit(origin if "://" in origin else f"//{origin}").hostname
    except ValueError:
        host = None
    return host or origin


def _normalise_origin(head: bytes) -> tuple[bytes, str | None]:
    """Give a scheme-less ``Origin`` an ``http://`` so autobahn's parser accepts it.

    Returns the new header block and the header's original value (None when absent).
    """
    lines = head.split(b"\r\n")
    raw: str | None = None
    for index, line in enumerate(lines[1:], start=1):
        name, sep, value = line.partition(b":")
        if not sep or name.strip().lower() not in (b"origin", b"sec-websocket-origin"):
            continue
        value = value.strip()
        raw = value.decode("latin-1")
        if not value:
            lines[index] = b""  # an empty Origin counts as absent (GOS: '')
        elif b"://" not in value and value.lower() != b"null":
            lines[index] = name + b": http://" + value
    return b"\r\n".join(line for line in lines if line), raw


class WampConnection(WebSocketServerProtocol):
    """A client of the WAMP server; user hooks receive it as ``connection``.

    Public attributes: ``session_id``, ``remote_address``, ``timers`` (cancelled on close),
    ``user_data`` (free for user code, e.g. the authenticated user) and ``subscriptions``.
    ``wamp2`` is None for a WAMP v1 client. ``session_id`` is a decimal string, the same
    number a WAMP v2 client is given as its integer session id.
    """

    factory: WampServerFactory

    def __init__(self) -> None:
        super().__init__()
        self.session_id = str(new_session_id())
        self.wamp2: Wamp2Session | None = None
        self.serializer: Serializer | None = None
        """The WAMP v2 serializer; None for WAMP v1 (how ``Topic.broadcast`` frames EVENTs)."""
        self.remote_address = ""
        self.prefixes: dict[str, str] = {}
        self.subscriptions: dict[str, tuple[Topic, WampRequest]] = {}
        self.timers = PeriodicTimers(f"connection {self.session_id}")
        self.user_data: dict[str, Any] = {}
        self._jobs: deque[Job] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._blocked = False
        self._opened = False
        self._closed = False
        self._origin_seen = False
        self._raw_origin: str | None = None
        self._max_buffer = 0
        self._pending: list[bytes] | None = None

    @property
    def app(self) -> WampServer:
        return self.factory.app

    # -- transport and handshake ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        self.remote_address = str(peer[0]).removeprefix("::ffff:") if peer else ""
        if self.remote_address in self.app.blocked_ips:
            # GOS's BlockedIpCheck: close before any HTTP, no reply.
            self._blocked = True
            transport.close()
            logger.info("connection from blocked address %s refused", self.remote_address)
            self.app.spawn(
                self.app.dispatcher.dispatch(
                    CONNECTION_REJECTED, ConnectionRejectedEvent(connection=self)
                )
            )
            return
        self._max_buffer = self.app.max_outgoing_buffer
        super().connection_made(transport)  # type: ignore[no-untyped-call]
        # asyncio calls pause_writing() once the unsent bytes pass this mark.
        cast(asyncio.WriteTransport, transport).set_write_buffer_limits(high=self._max_buffer)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._blocked:
            super().connection_lost(exc)  # type: ignore[no-untyped-call]

    def data_received(self, data: bytes) -> None:
        if not self._blocked:
            super().data_received(data)  # type: ignore[no-untyped-call]

    def processHandshake(self) -> None:
        if not self._origin_seen:
            end = self.data.find(b"\r\n\r\n")
            if end >= 0:
                self._origin_seen = True
                head, self._raw_origin = _normalise_origin(self.data[:end])
                self.data = head + self.data[end:]
        super().processHandshake()

    def onConnect(  # type: ignore[override]  # autobahn also takes a coroutine
        self, request: ConnectionRequest
    ) -> str | None | Awaitable[str | None]:
        app = self.app
        if app.settings.server.origin_check:
            raw = self._raw_origin or ""
            if origin_host(raw) not in app.allowed_origins:
                return self._refuse_origin(raw, request)
        return self._choose_protocol(request.protocols)

    def _choose_protocol(self, offered: list[str]) -> str | None:
        """The first subprotocol we speak, in the client's order of preference; None is v1."""
        serializers = self.app.wamp2_serializers
        for name in offered:
            if name == SUBPROTOCOL:
                return name
            serializer = serializers.get(name)
            if serializer is not None:
                self.serializer = serializer
                self.wamp2 = Wamp2Session(self, serializer)
                return name
        return None

    async def _refuse_origin(self, origin: str, request: ConnectionRequest) -> str | None:
        logger.info("origin %r of %s refused", origin, self.remote_address)
        dispatch = self.app.dispatcher.dispatch
        await dispatch(CLIENT_REJECTED, ClientRejectedEvent(origin=origin, request=request))
        await dispatch(
            CONNECTION_REJECTED, ConnectionRejectedEvent(connection=self, request=request)
        )
        raise ConnectionDeny(ConnectionDeny.FORBIDDEN, "Origin not allowed")  # type: ignore[no-untyped-call]

    def succeedHandshake(self, res: Any) -> None:
        # Collect the 101 response and the WELCOME written by onOpen into one write.
        chunks: list[bytes] = []
        # An instance attribute shadows the method for the duration of the call.
        self.__dict__["sendData"] = lambda data, sync=False, chopsize=None: chunks.append(data)
        try:
            super().succeedHandshake(res)
        finally:
            del self.__dict__["sendData"]
            if chunks:
                self.sendData(b"".join(chunks))

    def onOpen(self) -> None:
        self._opened = True
        app = self.app
        app.register(self)
        if self.wamp2 is not None:
            return  # the client speaks first (HELLO)
        welcome = dumps([WELCOME, self.session_id, 1, SERVER_IDENT]).encode()
        self.sendData(app.frame(welcome))
        app.stats.frames_out += 1
        self._enqueue(self._connected)

    async def _connected(self) -> None:
        await self.app.dispatcher.dispatch(CLIENT_CONNECTED, ClientConnectedEvent(self))

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if not self._opened or self._closed:
            return
        self._closed = True
        self.timers.cancel_all()
        self.app.unregister(self)
        self._jobs.clear()
        self._enqueue(self._leave)

    async def _leave(self) -> None:
        app = self.app
        for topic_id in list(self.subscriptions):
            entry = app.manager.unsubscribe(self, topic_id)
            if entry is not None:
                await app.topic_dispatcher.unsubscribe(self, entry[0], entry[1])
        if self.wamp2 is None or self.wamp2.welcomed:  # v2: only after CLIENT_CONNECTED
            await app.dispatcher.dispatch(CLIENT_DISCONNECTED, ClientDisconnectedEvent(self))

    # -- output -----------------------------------------------------------------------------

    def write_frame(self, frame: bytes) -> bool:
        """Queue ready frame bytes if the connection is open; False when it is not.

        Frames queued during one event-loop turn leave together in one ``transport.write``
        (``flush``): under load a broadcast costs one ``send()`` per client per turn, not per
        push, and the syscall is what dominates a broadcast.
        """
        if self.state != _STATE_OPEN or self.transport is None:
            return False
        pending = self._pending
        if pending is None:
            self._pending = [frame]
            self.app.schedule_flush(self)
        else:
            pending.append(frame)
        return True

    def flush(self) -> None:
        """Write the queued frames, in order, in one write."""
        frames, self._pending = self._pending, None
        transport = self.transport
        if not frames or self.state != _STATE_OPEN or transport is None:
            return
        self.app.stats.frames_out += len(frames)
        transport.write(frames[0] if len(frames) == 1 else b"".join(frames))

    def pause_writing(self) -> None:
        """The client's unsent bytes passed ``max_outgoing_buffer``: it does not read, cut it
        off rather than hold its frames in server memory for as long as it does not read."""
        transport = self.transport
        if transport is not None and self.state == _STATE_OPEN:
            self._cut_off(transport.get_write_buffer_size())

    def _cut_off(self, pending: int) -> None:
        self.app.stats.cut_off += 1
        logger.warning(
            "connection %s cut off: %d bytes unread, max_outgoing_buffer is %d",
            self.session_id,
            pending,
            self._max_buffer,
            extra={"conn_id": self.session_id},
        )
        self.wasNotCleanReason = "client did not read (outgoing buffer over limit)"
        self.dropConnection(abort=True)

    def send_message(self, message: list[Any]) -> bool:
        """Send one WAMP message (a list) to this client, in its WAMP version's serialization."""
        if self.wamp2 is not None:
            return self.wamp2.send(message)
        return self.write_frame(self.app.frame(dumps(message).encode()))

    def send_event(self, topic_uri: str, payload: Any) -> bool:
        """EVENT to this client only; v1: whether or not it subscribed, v2: if it subscribed."""
        if self.wamp2 is not None:
            return self.wamp2.event(topic_uri, payload)
        return self.send_message([EVENT, topic_uri, payload])

    def call_result(self, call_id: Any, result: Any) -> None:
        if self.wamp2 is not None:
            self.wamp2.result(result)
            return
        self.send_message([CALLRESULT, call_id, result])

    def call_error(self, call_id: Any, error_uri: str, desc: str, details: Any = None) -> None:
        if self.wamp2 is not None:
            self.wamp2.call_error(desc, details)  # answers the v2 request being handled
            return
        message = [CALLERROR, call_id, error_uri, desc]
        if details is not None:
            message.append(details)
        self.send_message(message)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake with any code (autobahn's sendClose refuses 1001-2999)."""
        if self.state == _STATE_OPEN:
            if self.wamp2 is not None:
                self.wamp2.closing(code, reason)  # ABORT or GOODBYE first
            self.flush()  # queued frames go before the close frame
            # A close reason holds at most 123 bytes; never cut a UTF-8 sequence in half.
            reason_utf8 = reason.encode()[:123].decode("utf-8", "ignore").encode()
            self.sendCloseFrame(code=code, reasonUtf8=reason_utf8, isReply=False)

    def fail(self, reason: str, error: BaseException | None = None) -> None:
        """Close this connection with 1007 because of what it sent; the server carries on."""
        if self._closed or self.state != _STATE_OPEN:
            return
        logger.warning(
            "connection %s closed with 1007: %s",
            self.session_id,
            reason,
            extra={"conn_id": self.session_id},
        )
        self._jobs.clear()
        event = ClientErrorEvent(connection=self, error=error or ProtocolError(reason))
        self.app.spawn(self.app.dispatcher.dispatch(CLIENT_ERROR, event))
        self.close(CLOSE_INVALID_PAYLOAD, reason)

    # -- input ------------------------------------------------------------------------------

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.app.stats.frames_in += 1
        if self._closed or self.state != _STATE_OPEN:
            return
        if self.wamp2 is not None:
            self.wamp2.receive(payload, isBinary)
            return
        try:
            self._receive(payload, isBinary)
        except ProtocolError as exc:
            self.fail(str(exc), exc)

    def _receive(self, payload: bytes, is_binary: bool) -> None:
        if is_binary:
            raise ProtocolError("binary frame; WAMP v1 uses text frames")
        try:
            message = json.loads(payload)
        except ValueError as exc:
            raise ProtocolError(f"invalid JSON: {exc}") from None
        if not isinstance(message, list) or not message:
            raise ProtocolError("a WAMP message must be a non-empty JSON array")
        kind = message[0]
        if len(message) > 1 and (
            isinstance(message[1], bool) or not isinstance(message[1], str | int | float)
        ):
            raise ProtocolError("element 1 must be a string or a number")
        if type(kind) is not int:
            raise ProtocolError(f"message type must be an integer, got {kind!r}")
        if kind == PREFIX:
            curie, uri = self._strings(message, 3, "PREFIX")
            self.prefixes[curie] = uri
        elif kind == CALL:
            if len(message) < 3 or not isinstance(message[2], str):
                raise ProtocolError("CALL needs [2, callId, procUri, ...]")
            args = message[3:]
            params = args[0] if len(args) == 1 and isinstance(args[0], list | dict) else args
            self._enqueue(partial(self._call, message[1], self.resolve(message[2]), params))
        elif kind == SUBSCRIBE:
            (uri,) = self._strings(message, 2, "SUBSCRIBE")
            self._enqueue(partial(self._subscribe, self.resolve(uri)))
        elif kind == UNSUBSCRIBE:
            (uri,) = self._strings(message, 2, "UNSUBSCRIBE")
            self._enqueue(partial(self._unsubscribe, self.resolve(uri)))
        elif kind == PUBLISH:
            self._publish_message(message)
        else:
            raise ProtocolError(f"unknown message type {kind}")

    @staticmethod
    def _strings(message: list[Any], length: int, name: str) -> list[str]:
        fields = message[1:length]
        if len(message) != length or not all(isinstance(f, str) for f in fields):
            raise ProtocolError(f"{name} needs {length - 1} string field(s)")
        return fields

    def _publish_message(self, message: list[Any]) -> None:
        if not 3 <= len(message) <= 5 or not isinstance(message[1], str):
            raise ProtocolError("PUBLISH needs [7, topicUri, event, exclude?, eligible?]")
        exclude: list[str] = []
        eligible: list[str] = []
        if len(message) > 3:
            option = message[3]
            if isinstance(option, list):
                exclude = option
            elif option:
                exclude = [self.session_id]  # excludeMe
        if len(message) > 4:
            if not isinstance(message[4], list):
                raise ProtocolError("PUBLISH eligible must be a list of session ids")
            eligible = message[4]
        job = partial(self._publish, self.resolve(message[1]), message[2], exclude, eligible)
        self._enqueue(job)

    def resolve(self, uri: str) -> str:
        """Expand a CURIE ``prefix:reference`` by plain concatenation (the WAMP v1 spec).

        Ratchet inserts ``#`` between the two; register prefixes ending in ``#`` or ``/``
        (``[1, "calc", "http://example.com/calc#"]``) and both rules agree.
        """
        prefix, sep, reference = uri.partition(":")
        if sep and not reference.startswith("//"):
            base = self.prefixes.get(prefix)
            if base is not None:
                return base + reference
        return uri

    # -- the per-connection worker ----------------------------------------------------------

    def _enqueue(self, job: Job) -> None:
        self._jobs.append(job)
        if self._worker is None:
            self._worker = self.app.spawn(self._work())

    async def _work(self) -> None:
        try:
            while self._jobs:
                job = self._jobs.popleft()
                try:
                    await job()
                except ResourceNotFound as exc:
                    self.fail(str(exc), exc)
                except Exception as exc:
                    logger.error(
                        "connection %s: unexpected error: %r",
                        self.session_id,
                        exc,
                        extra={"conn_id": self.session_id},
                    )
                    logger.debug("traceback", exc_info=True)
                    self.fail(f"server error: {exc}", exc)
        finally:
            self._worker = None

    async def _call(self, call_id: Any, uri: str, params: Any) -> None:
        try:
            request = self.app.router.match(uri)
        except ResourceNotFound as exc:
            details = {"code": 404, "rpc": {}, "params": params, "request": {}}
            self.call_error(call_id, uri, str(exc), details)
            return
        await self.app.rpc_dispatcher.call(self, call_id, uri, request, params)

    async def _subscribe(self, uri: str) -> None:
        app = self.app
        request = app.router.match(uri)
        topic = app.manager.subscribe(self, uri, request)
        if topic is not None:
            await app.topic_dispatcher.subscribe(self, topic, request)

    async def _unsubscribe(self, uri: str) -> None:
        entry = self.app.manager.unsubscribe(self, uri)
        if entry is not None:
            await self.app.topic_dispatcher.unsubscribe(self, entry[0], entry[1])

    async def _publish(self, uri: str, event: Any, exclude: list[str], eligible: list[str]) -> None:
        app = self.app
        request = app.router.match(uri)
        topic = app.manager.topic(uri)
        await app.topic_dispatcher.publish(self, topic, request, event, exclude, eligible)

    def __repr__(self) -> str:
        return f"WampConnection({self.session_id}, {self.remote_address})"


class WampServerFactory(WebSocketServerFactory):
    """Builds a ``WampConnection`` per TCP connection; create it inside the running loop."""

    protocol = WampConnection

    def __init__(self, app: WampServer, url: str) -> None:
        loop = asyncio.get_running_loop()
        super().__init__(url, loop=loop, server=SERVER_IDENT)  # type: ignore[no-untyped-call]
        self.app = app
