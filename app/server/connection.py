"""One client's WebSocket connection on autobahn's asyncio protocol; it holds one WAMP session.

What the GOS clients need and autobahn does not do by itself:

- a session's first frame (v1 WELCOME) can leave in the same ``transport.write`` as the 101
  (``send_now``; the PHP client reads once);
- an ``Origin`` without a scheme (``Origin: 127.0.0.1``, the PHP client) is accepted;
- the first subprotocol we speak is chosen in the client's order, and a handshake offering
  none is accepted (it speaks WAMP v1);
- what breaks the protocol closes only this connection, with the error's code (1007 by
  default) and one log line (``fail``);
- a client whose unsent output stays over ``max_outgoing_buffer`` for ``slow_reader_timeout``
  seconds (a backlog it does not drain), or passes 16 times that, is cut off;
- per-connection budgets (``server.limits``, docs/security.md): inbound messages and pings per
  second (token buckets), queued jobs and pending calls, the handshake head's size; over one,
  the client is closed with 1008 and its reads stop;
- a connection that is gone is unregistered whatever state its handshake was in (``_gone``).

Parsing and encoding belong to the session (app/server/session.py). Its requests run in arrival
order on a short-lived worker task (``enqueue``), so a user hook that awaits never lets a later
PUBLISH overtake the SUBSCRIBE before it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from autobahn.asyncio.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionRequest

from gos_web_socket.app.auth.credentials import Credentials
from gos_web_socket.app.auth.user import ANONYMOUS, User
from gos_web_socket.app.events import (
    CLIENT_CONNECTED,
    CLIENT_DISCONNECTED,
    CLIENT_ERROR,
    ClientConnectedEvent,
    ClientDisconnectedEvent,
    ClientErrorEvent,
    EventDispatcher,
)
from gos_web_socket.app.exceptions import LimitExceeded, ProtocolError
from gos_web_socket.app.limits import TokenBucket, check_count
from gos_web_socket.app.server.compression import DeflateFormat, negotiated_window
from gos_web_socket.app.server.guard import Guard, normalise_origin
from gos_web_socket.app.server.session import SERVER_AGENT, Session, WireFormat, new_session_id
from gos_web_socket.app.server.timers import PeriodicTimers
from gos_web_socket.app.stats import ServerStats
from gos_web_socket.app.web import Response, encode_response, parse_request
from gos_web_socket.settings.models import LimitsSettings

if TYPE_CHECKING:
    from gos_web_socket.app.auth.authenticator import Authenticator
    from gos_web_socket.app.router import WampRequest
    from gos_web_socket.app.server.topic import Topic

logger = logging.getLogger(__name__)

CLOSE_GOING_AWAY = 1001
CLOSE_INVALID_PAYLOAD = 1007
CLOSE_POLICY = 1008
CLOSE_MESSAGE_TOO_BIG = 1009
_STATE_OPEN = WebSocketServerProtocol.STATE_OPEN
BACKLOG_FACTOR = 16
"""Unsent bytes beyond this many times ``max_outgoing_buffer`` cut a client off at once."""
_HEAD_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"Content-Length: 0\r\nConnection: close\r\n\r\n"
)
_FORBIDDEN = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
REFUSED_LINGER = 1.0
"""Seconds a refused client's connection stays (reads paused) so that it reads our answer
before the TCP close: closing a socket with unread input sends a reset, which may discard it."""
_AUTOBAHN_REASONS = {1002: "protocol_error", 1007: "invalid_utf8", 1009: "max_message_size"}
"""What autobahn itself closes for (frame checks happen before ``onMessage``)."""

Job = Callable[[], Awaitable[None]]
Failed = Callable[[str, Exception], None]


@dataclass(frozen=True, slots=True)
class ConnectionServices:
    """What a connection needs of its server, and nothing more."""

    guard: Guard
    dispatcher: EventDispatcher
    stats: ServerStats
    max_outgoing_buffer: int
    spawn: Callable[[Coroutine[Any, Any, Any]], asyncio.Task[Any]]
    """Run a coroutine as a task that the server cancels on stop."""
    schedule_flush: Callable[[WampConnection], None]
    """Have ``connection.flush()`` run once at the end of this loop turn."""
    register: Callable[[WampConnection], None]
    unregister: Callable[[WampConnection], None]
    choose_session: Callable[[WampConnection, list[str]], tuple[str | None, Session[Any]]]
    """The subprotocol to answer (None: none) and the session speaking it, from the offered ones."""
    leave: Callable[[WampConnection], Awaitable[None]]
    """Unsubscribe a closed connection from every topic it joined (the hooks run)."""
    health: Callable[[], tuple[bool, dict[str, Any]]] | None = None
    """Readiness for a plain ``GET /health`` (no Upgrade); None: autobahn answers as usual."""
    authenticator: Authenticator | None = None
    """Sets ``connection.user`` (app/auth); None: every connection is anonymous."""
    limits: LimitsSettings = field(default_factory=LimitsSettings)
    """The per-connection budgets (``server.limits``)."""
    max_message_size: int = 65536
    """``server.max_message_size``: what a session's JSON decode refuses beyond (1009)."""
    slow_reader_timeout: float = 2.0
    """``server.slow_reader_timeout``: seconds a client may stay over ``max_outgoing_buffer``."""


_EVENT_NAMES: dict[tuple[str, ...], list[str]] = {}
"""autobahn's observable event names, one list per distinct set (``set_valid_events``)."""


class SmallQueue(list[Any]):
    """The part of ``deque`` that autobahn's receive and send queues use (append, popleft,
    clear, len), on a list: they rarely hold more than two items, so ``pop(0)`` is cheap."""

    __slots__ = ()

    def popleft(self) -> Any:
        return self.pop(0)


class JobQueue:
    """One connection's requests, run in arrival order on a short-lived worker task."""

    __slots__ = ("_failed", "_jobs", "_max_jobs", "_owner", "_per_turn", "_spawn", "_worker")

    def __init__(self, owner: str, services: ConnectionServices, failed: Failed) -> None:
        self._owner = owner
        self._spawn = services.spawn
        self._failed = failed
        self._jobs: deque[Job] | None = None
        """Made for a burst and dropped once it is done: an idle connection holds none."""
        self._worker: asyncio.Task[None] | None = None
        self._max_jobs = services.limits.max_queued_jobs
        self._per_turn = services.limits.messages_per_turn

    def put(self, job: Job) -> None:
        """Queue ``job``; raises ``LimitExceeded`` (``max_queued_jobs``) when the queue is full."""
        jobs = self._jobs
        if jobs is None:
            jobs = self._jobs = deque()
        check_count("max_queued_jobs", len(jobs), self._max_jobs, "queued messages")
        jobs.append(job)
        if self._worker is None:
            self._worker = self._spawn(self._work())

    def clear(self) -> None:
        """Drop the jobs not started yet (the connection is closing)."""
        if self._jobs is not None:
            self._jobs.clear()

    async def _work(self) -> None:
        """Run the jobs; every ``messages_per_turn`` jobs, yield to the loop (fairness: a job
        that never awaits would otherwise let one client's burst hold the loop)."""
        done = 0
        jobs = self._jobs
        try:
            while jobs:
                job = jobs.popleft()
                try:
                    await job()
                except ProtocolError as exc:  # the client's fault: closed, one log line
                    self._failed(str(exc), exc)
                except Exception as exc:
                    extra = {"conn_id": self._owner}
                    logger.error(
                        "connection %s: unexpected error: %r", self._owner, exc, extra=extra
                    )
                    logger.debug("traceback", exc_info=True)
                    self._failed(f"server error: {exc}", exc)
                done += 1
                if done % self._per_turn == 0:
                    await asyncio.sleep(0)
        finally:
            self._worker = None
            if not self._jobs:
                self._jobs = None


class WampConnection(WebSocketServerProtocol):
    """A client of the WAMP server (v1 or v2); user hooks receive it as ``connection``.

    Public attributes: ``session_id`` (a decimal string; a v2 client gets the same number as
    its integer session id), ``remote_address``, ``timers`` (cancelled on close), ``user_data``
    (free for user code), ``subscriptions``, ``session``: the ``Wamp1Session`` or
    ``Wamp2Session`` chosen during the handshake, and ``user``: who the authenticator says
    it is (``app.auth.User``; anonymous has no id), from the handshake's ``credentials``.
    """

    factory: WampServerFactory
    session: Session[Any]
    _services: ConnectionServices
    _jobs: JobQueue

    # Defaults on the class, assigned on an instance only when they change: autobahn already
    # puts some 75 attributes in each connection's __dict__, and past 85 keys CPython doubles
    # the dict's table (1.6 KiB more for every idle connection).
    _blocked = _opened = _joined = _closed = _lost = False
    _refused = False
    """True once the client was refused (431, a spent budget): its input is ignored."""
    _close_reason = ""
    """Why we closed the client (a ``server.limits`` name, ``invalid_json``...), counted."""
    pending_calls = 0
    """RPC calls of this client queued or running (``server.limits.max_pending_calls``)."""
    _origin_seen = False
    _raw_origin: str | None = None
    _pending: bytes | list[bytes] | None = None
    """Frames queued this loop turn: one frame as it is, several as a list."""
    _deflate_window: int | None = None
    """permessage-deflate's server window bits once negotiated (app/server/compression.py)."""
    _backlog_timer: asyncio.TimerHandle | None = None
    """Running while the client's unsent bytes are over ``max_outgoing_buffer``."""
    _timers: PeriodicTimers | None = None
    _user_data: dict[str, Any] | None = None

    def __init__(self) -> None:
        super().__init__()
        self.session_id = str(new_session_id())
        self.remote_address = ""
        self.subscriptions: dict[str, tuple[Topic, WampRequest]] = {}
        self.user: User = ANONYMOUS
        self.credentials = Credentials()

    def set_valid_events(self, valid_events: list[str] | None = None) -> None:
        """autobahn gives every connection a copy of the same event names and a dict of their
        last results; the names are one list for all connections here (autobahn only reads
        it), and the results dict starts empty (autobahn writes it when a listener fires)."""
        names = tuple(valid_events or ())
        self._valid_events = _EVENT_NAMES.setdefault(names, list(names))
        self._results: dict[str, Any] = {}

    @property
    def user_data(self) -> dict[str, Any]:
        """A dict free for user code (made on first use)."""
        if self._user_data is None:
            self._user_data = {}
        return self._user_data

    @user_data.setter
    def user_data(self, value: dict[str, Any]) -> None:
        self._user_data = value

    @property
    def timers(self) -> PeriodicTimers:
        """This connection's periodic timers (cancelled on close); made on first use, since
        most connections never have one."""
        if self._timers is None:
            self._timers = PeriodicTimers(f"connection {self.session_id}")
        return self._timers

    @property
    def _log_extra(self) -> dict[str, str]:
        return {"conn_id": self.session_id}

    @property
    def wire_format(self) -> WireFormat:
        """How topics frame this client's EVENTs: its session's format, compressed when the
        handshake agreed on permessage-deflate."""
        if self._deflate_window is None:
            return self.session.wire_format
        return DeflateFormat(self.session.wire_format, self._deflate_window)

    # -- transport and handshake ------------------------------------------------------------

    @property
    def limits(self) -> LimitsSettings:
        """This connection's budgets (``server.limits``)."""
        return self._services.limits

    @property
    def max_message_size(self) -> int:
        """``server.max_message_size``, bytes."""
        return self._services.max_message_size

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        services = self._services = self.factory.services
        self._jobs = JobQueue(self.session_id, services, self.fail)
        limits = services.limits
        self._messages = TokenBucket(limits.messages_per_second, limits.messages_burst)
        self._pings = TokenBucket(limits.pings_per_second, limits.pings_burst)
        peer = transport.get_extra_info("peername")
        self.remote_address = str(peer[0]).removeprefix("::ffff:") if peer else ""
        # Behind a trusted proxy the client's address is known only once the head is read.
        proxied = services.guard.trusts(self.remote_address)
        if not proxied and services.guard.blocks(self.remote_address):
            self._blocked = True  # GOS's BlockedIpCheck: close before any HTTP, no reply
            transport.close()
            services.spawn(services.guard.blocked(self, self.remote_address))
            return
        super().connection_made(transport)  # type: ignore[no-untyped-call]
        # autobahn's two queues hold a chunk or two for a moment and are empty the rest of a
        # connection's life; an empty deque keeps a 0.7 KiB block, an empty list 56 bytes.
        # (typed as deques by autobahn; SmallQueue has the part of their API it uses)
        self.receive_queue = SmallQueue()  # type: ignore[assignment]
        self.send_queue = SmallQueue()  # type: ignore[assignment]
        # asyncio calls pause_writing() once the unsent bytes pass this mark.
        limit = services.max_outgoing_buffer
        cast(asyncio.WriteTransport, transport).set_write_buffer_limits(high=limit)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._blocked:
            return
        try:
            super().connection_lost(exc)  # type: ignore[no-untyped-call]
        except asyncio.InvalidStateError:
            # autobahn resolves its is_closed future twice when its opening-handshake timeout
            # dropped a connection whose handshake then completed: onClose never ran.
            logger.debug("connection %s: lost during its handshake", self.session_id)
        finally:
            if self._backlog_timer is not None:
                self._backlog_timer.cancel()
                self._backlog_timer = None
            self._gone()

    def data_received(self, data: bytes) -> None:
        if not self._blocked and not self._refused:
            super().data_received(data)  # type: ignore[no-untyped-call]

    def processHandshake(self) -> None:
        if not self._origin_seen:
            end = self.data.find(b"\r\n\r\n")
            limit = self._services.limits.handshake_max_bytes
            if end > limit or (end < 0 and len(self.data) > limit):
                self._refuse_head(limit)
                return
            if end >= 0:
                self._origin_seen = True
                if self._forwarded_blocked(end) or self._answer_health(self.data[:end]):
                    return
                head, self._raw_origin = normalise_origin(self.data[:end])
                self.data = head + self.data[end:]
        super().processHandshake()

    def _forwarded_blocked(self, end: int) -> bool:
        """Read the client's address from a trusted proxy's headers; True (403 sent) if blocked."""
        guard = self._services.guard
        if not guard.trusts(self.remote_address):
            return False
        request = parse_request(self.data[:end])
        headers = request.headers if request is not None else {}
        proxy = self.remote_address
        self.remote_address = guard.client_address(proxy, headers)
        logger.debug(
            "connection %s: client %s via proxy %s", self.session_id, self.remote_address, proxy
        )
        if not guard.blocks(self.remote_address):
            return False
        self._refused = True
        self.data = b""
        transport = cast(asyncio.Transport, self.transport)
        transport.write(_FORBIDDEN)
        transport.close()
        self._services.spawn(guard.blocked(self, self.remote_address))
        return True

    def _refuse_head(self, limit: int) -> None:
        """HTTP 431 for a request head over ``handshake_max_bytes``; nothing more is read."""
        self._refused = True
        size = len(self.data)
        self.data = b""
        self._count_close("handshake_max_bytes")
        message = "connection %s refused with HTTP 431: a request head of %d+ bytes, limit %d"
        logger.warning(message, self.session_id, size, limit, extra=self._log_extra)
        transport = cast(asyncio.Transport, self.transport)
        transport.write(_HEAD_TOO_LARGE)
        self._stop_reading()

    def _stop_reading(self) -> None:
        """Read nothing more from this client and drop it after ``REFUSED_LINGER`` seconds.

        What was read and not parsed yet is dropped too, so that the rest of a flood is not
        parsed (autobahn's frame loop stops once ``self.data`` is empty).
        """
        self._refused = True
        self.data = b""
        self.receive_queue.clear()
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.pause_reading()
            asyncio.get_running_loop().call_later(REFUSED_LINGER, self._drop_refused)

    def _drop_refused(self) -> None:
        if self.transport is not None:
            self.dropConnection(abort=True)

    def _answer_health(self, head: bytes) -> bool:
        """A load balancer's ``GET /health`` without Upgrade: answer it as the ops port does."""
        health = self._services.health
        if health is None or not head.startswith((b"GET /health", b"HEAD /health")):
            return False
        request = parse_request(head)
        if request is None or request.path != "/health" or "upgrade" in request.headers:
            return False
        ready, body = health()
        reply = Response.json(body, 200 if ready else 503)
        self.transport.write(encode_response(reply, head_only=request.method == "HEAD"))
        self.transport.close()
        return True

    def onConnect(  # type: ignore[override]  # autobahn also takes a coroutine
        self, request: ConnectionRequest
    ) -> str | None | Awaitable[str | None]:
        guard = self._services.guard
        if guard.refuses_origin(self._raw_origin):
            return guard.refuse_origin(self, self.remote_address, self._raw_origin or "", request)
        subprotocol, self.session = self._services.choose_session(self, request.protocols)
        if self._services.authenticator is not None:
            self._services.authenticator.handshake(self, request)  # v1: 401 when refused
        return subprotocol

    def succeedHandshake(self, res: Any) -> None:
        # Collect the 101 response and what onOpen sends with send_now into one write.
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
        if self._lost or self.transport is None:
            return  # the handshake completed after the connection was gone: no session
        self._opened = True
        self._deflate_window = negotiated_window(self)
        self._drop_handshake_leftovers()
        self._services.register(self)
        self.session.opened()

    def _drop_handshake_leftovers(self) -> None:
        """Forget what autobahn reads only during the handshake: the raw request and response
        heads, the status line, the key, the offered subprotocols (the parsed headers stay in
        ``http_headers``). About 0.6 KiB less for every idle connection."""
        self.http_request_data, self.http_response_data = b"", ""
        self.http_status_line = self._wskey = ""
        self.websocket_protocols = []

    def joined(self) -> None:
        """The session is established (v1: on open, v2: WELCOME sent): ``client_connected``."""
        self._joined = True
        self._jobs.put(self._connected)

    async def _connected(self) -> None:
        await self._services.dispatcher.dispatch(CLIENT_CONNECTED, ClientConnectedEvent(self))

    def _fail_connection(self, code: int = 1001, reason: str = "going away") -> None:
        """Autobahn refused a frame before ``onMessage`` (too big, not UTF-8, bad framing)."""
        why = _AUTOBAHN_REASONS.get(code)
        if why is not None and self.state == _STATE_OPEN:
            self._count_close(why)
            message = "connection %s closed with %d (%s): %s"
            logger.warning(message, self.session_id, code, why, reason, extra=self._log_extra)
        super()._fail_connection(code, reason)
        if code == CLOSE_MESSAGE_TOO_BIG:
            self._stop_reading()  # the rest of an oversized message is not worth reading

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        self._gone()

    def _gone(self) -> None:
        """Unregister the connection, cancel its timers and leave its topics; idempotent.

        From ``onClose``, and from ``connection_lost`` for when autobahn never calls
        ``onClose`` (a handshake finished after its timeout dropped the connection).
        """
        self._lost = True
        if not self._opened or self._closed:
            return
        self._closed = True
        if self._timers is not None:
            self._timers.cancel_all()
        self._services.unregister(self)
        self._jobs.clear()
        self._jobs.put(self._leave)

    async def _leave(self) -> None:
        await self._services.leave(self)
        if self._joined:  # a v2 client that never got WELCOME never connected
            event = ClientDisconnectedEvent(self)
            await self._services.dispatcher.dispatch(CLIENT_DISCONNECTED, event)

    # -- output -----------------------------------------------------------------------------

    def send_now(self, frame: bytes) -> None:
        """Write ``frame`` at once; from ``Session.opened`` it shares the 101's write."""
        self.sendData(frame)
        self._services.stats.frames_out += 1

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
            # The frame itself, not a list: a broadcast then allocates no object the garbage
            # collector tracks per subscriber (1,000 lists a push triggered a collection each).
            self._pending = frame
            self._services.schedule_flush(self)
        elif isinstance(pending, bytes):
            self._pending = [pending, frame]
        else:
            pending.append(frame)
        return True

    def flush(self) -> None:
        """Write the queued frames, in order, in one write."""
        pending, self._pending = self._pending, None
        transport = self.transport
        if pending is None or self.state != _STATE_OPEN or transport is None:
            return
        if isinstance(pending, bytes):
            self._services.stats.frames_out += 1
            transport.write(pending)
        else:
            self._services.stats.frames_out += len(pending)
            transport.write(b"".join(pending))
        if self._backlog_timer is not None:  # paused: a backlog that keeps growing
            self._check_backlog()

    def pause_writing(self) -> None:
        """The client's unsent bytes passed ``max_outgoing_buffer``. One big push or a burst
        does that to a client that reads at full speed, so it gets ``slow_reader_timeout`` to
        drain below it (``resume_writing``); a backlog that stays, or one 16 times the limit
        (memory), cuts it off. A cut-off client reconnects and recovers (docs/streams.md)."""
        if self._backlog_timer is None:
            loop = asyncio.get_running_loop()
            timeout = self._services.slow_reader_timeout
            self._backlog_timer = loop.call_later(timeout, self._cut_off, "did not drain")
        self._check_backlog()

    def resume_writing(self) -> None:
        """The backlog drained (below a quarter of the limit): the client reads."""
        if self._backlog_timer is not None:
            self._backlog_timer.cancel()
            self._backlog_timer = None

    def _check_backlog(self) -> None:
        transport = self.transport
        limit = self._services.max_outgoing_buffer * BACKLOG_FACTOR
        if transport is not None and transport.get_write_buffer_size() > limit:
            self._cut_off(f"over {BACKLOG_FACTOR} x max_outgoing_buffer")

    def _cut_off(self, why: str) -> None:
        """Abort a client that does not read, rather than hold its frames in server memory."""
        if self._backlog_timer is not None:
            self._backlog_timer.cancel()
            self._backlog_timer = None
        transport = self.transport
        if transport is not None and self.state == _STATE_OPEN:
            self._services.stats.cut_off += 1
            unread, limit = transport.get_write_buffer_size(), self._services.max_outgoing_buffer
            message = "connection %s cut off: %d bytes unread (%s), max_outgoing_buffer is %d"
            logger.warning(message, self.session_id, unread, why, limit, extra=self._log_extra)
            self.wasNotCleanReason = "client did not read (outgoing buffer over limit)"
            self.dropConnection(abort=True)

    def send_event(self, topic: str, payload: Any) -> bool:
        """EVENT to this client only; v1: whether or not it subscribed, v2: if it subscribed."""
        return self.session.event(topic, payload)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake with any code (autobahn's sendClose refuses 1001-2999)."""
        if self.state == _STATE_OPEN:
            self.session.closing(code, reason)
            self.flush()  # queued frames go before the close frame
            # A close reason holds at most 123 bytes; never cut a UTF-8 sequence in half.
            reason_utf8 = reason.encode()[:123].decode("utf-8", "ignore").encode()
            self.sendCloseFrame(code=code, reasonUtf8=reason_utf8, isReply=False)

    def refuse(self) -> None:
        """Close with 1008 once the client was told that a secured topic refused it."""
        self.close(CLOSE_POLICY, "refused by a secured topic")

    def fail(self, reason: str, error: BaseException | None = None) -> None:
        """Close this connection because of what it sent, with the error's ``code`` (1007 by
        default; 1008 for a spent budget, whose reads then stop); the server carries on."""
        if self._closed or self.state != _STATE_OPEN:
            return
        code: int = getattr(error, "code", CLOSE_INVALID_PAYLOAD)
        why: str = getattr(error, "reason", "")
        if not why:
            failed_us = error is not None and not isinstance(error, ProtocolError)
            why = "server_error" if failed_us else "protocol_error"
        self._count_close(why)
        message = "connection %s closed with %d (%s): %s"
        logger.warning(message, self.session_id, code, why, reason, extra=self._log_extra)
        self._jobs.clear()
        event = ClientErrorEvent(connection=self, error=error or ProtocolError(reason))
        self._services.spawn(self._services.dispatcher.dispatch(CLIENT_ERROR, event))
        self.close(code, reason)
        if isinstance(error, LimitExceeded):
            self._stop_reading()  # a flood: do not parse the rest of it

    def _count_close(self, reason: str) -> None:
        """One count per closed client in ``stats.closed`` (the metric per reason)."""
        if not self._close_reason:
            self._close_reason = reason
            closed = self._services.stats.closed
            closed[reason] = closed.get(reason, 0) + 1

    # -- input ------------------------------------------------------------------------------

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self._services.stats.frames_in += 1
        if not self._closed and self.state == _STATE_OPEN:
            if not self._messages.take(time.monotonic()):
                rate = self._services.limits.messages_per_second
                over = LimitExceeded("messages_per_second", f"more than {rate:g} messages/s")
                self.fail(str(over), over)
                return
            self.session.receive(payload, isBinary)

    def onPing(self, payload: bytes) -> None:
        """Pong, within ``pings_per_second``; a ping flood is a write amplifier: close 1008."""
        if self._pings.take(time.monotonic()):
            super().onPing(payload)
        elif self.state == _STATE_OPEN:
            rate = self._services.limits.pings_per_second
            over = LimitExceeded("pings_per_second", f"more than {rate:g} pings/s")
            self.fail(str(over), over)

    def enqueue(self, job: Job) -> None:
        """Run ``job`` after the jobs queued before it (the session's requests, in order).

        Raises:
            LimitExceeded: ``max_queued_jobs`` jobs wait already (the session closes 1008).
        """
        self._jobs.put(job)

    def enqueue_call(self, job: Job) -> None:
        """``enqueue`` an RPC call, counted in ``pending_calls`` until it is answered.

        Raises:
            LimitExceeded: ``max_pending_calls`` or ``max_queued_jobs`` would be passed.
        """
        limit = self._services.limits.max_pending_calls
        check_count("max_pending_calls", self.pending_calls, limit, "calls not answered")

        async def call() -> None:
            try:
                await job()
            finally:
                self.pending_calls -= 1

        self._jobs.put(call)
        self.pending_calls += 1

    def __repr__(self) -> str:
        return f"WampConnection({self.session_id}, {self.remote_address})"


class WampServerFactory(WebSocketServerFactory):
    """Builds a ``WampConnection`` per TCP connection; create it inside the running loop."""

    protocol = WampConnection

    def __init__(self, services: ConnectionServices, url: str) -> None:
        loop = asyncio.get_running_loop()
        super().__init__(url, loop=loop, server=SERVER_AGENT)  # type: ignore[no-untyped-call]
        self.services = services
        self.protocol = with_options(type(self).protocol, self)

    def setProtocolOptions(self, *args: Any, **kwargs: Any) -> None:  # noqa: N802
        """Set autobahn's options; new connections see them through their class (below)."""
        super().setProtocolOptions(*args, **kwargs)  # type: ignore[no-untyped-call]
        self.protocol = with_options(type(self).protocol, self)


def with_options(base: type[WampConnection], factory: WebSocketServerFactory) -> type[Any]:
    """A subclass of ``base`` holding the factory's protocol options as class attributes.

    Autobahn copies every option (``CONFIG_ATTRS``, about 45) from the factory onto each new
    connection that does not already have it, which costs each idle connection some 1.5 KiB
    of instance dictionary; a class attribute counts as already there, so the options are
    stored once per server instead. Set options with ``setProtocolOptions`` (it rebuilds this
    class); a connection's own attribute still overrides its class's.
    """
    options = {}
    for name in base.CONFIG_ATTRS:
        value = getattr(factory, name)
        # A function as a class attribute would be bound to the connection: keep it plain.
        options[name] = staticmethod(value) if callable(value) else value
    return type(base.__name__, (base,), {**options, "__module__": base.__module__})
