"""One client's WebSocket connection: a thin adapter over autobahn's asyncio protocol.

The connection holds one WAMP session (app/server/session.py: parsing and encoding) and wires
autobahn's callbacks to objects that know nothing of autobahn, each tested without a socket:

- ``HttpGate`` (gate.py): before the handshake, 431 for a head over ``handshake_max_bytes``,
  a blocked peer or forwarded client (403), a plain ``GET /health``, the ``Origin`` without a
  scheme that the PHP client sends;
- ``Output`` (output.py): frames batched per loop turn, back-pressure, slow readers cut off;
- ``InboundBudgets`` (budgets.py): messages and pings per second;
- ``JobQueue`` (jobs.py): the session's requests in arrival order, queued jobs and pending calls.

Also here: a session's first frame (v1 WELCOME) leaves in the same ``transport.write`` as the
101 (``send_now``: the PHP client reads once); what breaks the protocol closes this connection
only, with the error's code (app/close_codes.py) and one log line (``fail``); a connection
that is gone is unregistered whatever state its handshake was in (``_gone``).

Every use of autobahn's internals is in this module (tests/server/test_autobahn_internals.py
fails, naming it, when one disappears from the installed autobahn): ``data`` (the read
buffer), ``receive_queue``/``send_queue``, ``_valid_events``/``_results``
(``set_valid_events``), ``sendData`` shadowed in ``succeedHandshake``, ``_fail_connection``,
``_perMessageCompress``, the handshake leftovers (``http_request_data``,
``http_response_data``, ``http_status_line``, ``_wskey``, ``websocket_protocols``),
``wasNotCleanReason``, ``CONFIG_ATTRS`` (``with_options``) and ``prepareMessage``'s
``payloadHybi`` (``WampServerFactory.frame``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from autobahn.asyncio.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionRequest

from gos_web_socket.app.auth.credentials import Credentials
from gos_web_socket.app.auth.user import ANONYMOUS, User
from gos_web_socket.app.close_codes import (
    CLOSE_GOING_AWAY,
    CLOSE_INVALID_PAYLOAD,
    CLOSE_MESSAGE_TOO_BIG,
    CLOSE_NORMAL,
    CLOSE_POLICY_VIOLATION,
    LIBRARY_CLOSE_REASONS,
)
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
from gos_web_socket.app.server.budgets import InboundBudgets
from gos_web_socket.app.server.compression import DeflateFormat, negotiated_window
from gos_web_socket.app.server.gate import Answer, HttpGate
from gos_web_socket.app.server.guard import Guard
from gos_web_socket.app.server.jobs import Job, JobQueue
from gos_web_socket.app.server.output import Output
from gos_web_socket.app.server.session import SERVER_AGENT, Session, WireFormat, new_session_id
from gos_web_socket.app.server.timers import PeriodicTimers
from gos_web_socket.app.stats import ServerStats
from gos_web_socket.settings.models import LimitsSettings

if TYPE_CHECKING:
    from gos_web_socket.app.auth.authenticator import Authenticator
    from gos_web_socket.app.router import WampRequest
    from gos_web_socket.app.server.topic import Topic

logger = logging.getLogger(__name__)

_STATE_OPEN = WebSocketServerProtocol.STATE_OPEN
REFUSED_LINGER = 1.0
"""Seconds a refused client's connection stays (reads paused) so that it reads our answer
before the TCP close: closing a socket with unread input sends a reset, which may discard it."""


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


def close_for(error: BaseException | None) -> tuple[int, str]:
    """The close code and the counted reason for closing a client because of ``error``."""
    code: int = getattr(error, "code", CLOSE_INVALID_PAYLOAD)
    why: str = getattr(error, "reason", "")
    if not why:
        failed_us = error is not None and not isinstance(error, ProtocolError)
        why = "server_error" if failed_us else "protocol_error"
    return code, why


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
    write_frame: Callable[[bytes], bool]
    """Queue ready frame bytes if the connection is open; False when it is not. The bound
    ``Output.write`` itself: the fan-out calls it once per subscriber."""
    _services: ConnectionServices
    _jobs: JobQueue
    _output: Output
    _budgets: InboundBudgets

    # Defaults on the class, assigned on an instance only when they change: autobahn already
    # puts some 75 attributes in each connection's __dict__, and past 85 keys CPython doubles
    # the dict's table (1.6 KiB more for every idle connection).
    _blocked = _opened = _joined = _closed = _lost = _origin_seen = False
    _refused = False
    """True once the client was refused (431, a spent budget): its input is ignored."""
    _close_reason = ""
    """Why we closed the client (a ``server.limits`` name, ``invalid_json``...), counted."""
    _raw_origin: str | None = None
    _deflate_window: int | None = None
    """permessage-deflate's server window bits once negotiated (app/server/compression.py)."""
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
        """One list of event names for all connections (autobahn only reads it) and an empty
        dict of results (autobahn writes it when a listener fires), instead of copies."""
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
        """Periodic timers cancelled on close; made on first use (most connections have none)."""
        if self._timers is None:
            self._timers = PeriodicTimers(f"connection {self.session_id}")
        return self._timers

    @property
    def wire_format(self) -> WireFormat:
        """How topics frame this client's EVENTs: its session's, deflated when agreed."""
        if self._deflate_window is None:
            return self.session.wire_format
        return DeflateFormat(self.session.wire_format, self._deflate_window)

    @property
    def limits(self) -> LimitsSettings:
        """This connection's budgets (``server.limits``)."""
        return self._services.limits

    @property
    def max_message_size(self) -> int:
        """``server.max_message_size``, bytes."""
        return self._services.max_message_size

    # -- transport and handshake ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        services = self._services = self.factory.services
        peer = transport.get_extra_info("peername")
        self.remote_address = str(peer[0]).removeprefix("::ffff:") if peer else ""
        if self.factory.gate.refuses_peer(self.remote_address):
            self._blocked = True  # GOS's BlockedIpCheck: close before any HTTP, no reply
            transport.close()
            services.spawn(services.guard.blocked(self, self.remote_address))
            return
        self._jobs = JobQueue(self.session_id, services.spawn, services.limits, self.fail)
        self._budgets = InboundBudgets(services.limits)
        self._output = output = Output(self, services, _STATE_OPEN)
        self.write_frame = output.write
        super().connection_made(transport)  # type: ignore[no-untyped-call]
        # autobahn's two queues hold a chunk or two for a moment and are empty the rest of a
        # connection's life; an empty deque keeps a 0.7 KiB block, an empty list 56 bytes.
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
            self._output.stop()
            self._gone()

    def data_received(self, data: bytes) -> None:
        if not self._blocked and not self._refused:
            super().data_received(data)  # type: ignore[no-untyped-call]

    def processHandshake(self) -> None:
        if not self._origin_seen:  # None: the head is not complete yet
            verdict = self.factory.gate.check(self.data, self.remote_address, self.session_id)
            if isinstance(verdict, Answer):
                self.remote_address = verdict.address
                self._answer(verdict)
                return
            if verdict is not None:
                self._origin_seen = True
                self.remote_address, self._raw_origin = verdict.address, verdict.origin
                self.data = verdict.data
        super().processHandshake()

    def _answer(self, answer: Answer) -> None:
        """The gate answered the request: write it and end (a 431 lingers, reads stopped)."""
        self._refused = True
        self.data = b""
        self.transport.write(answer.reply)
        if answer.reason == "handshake_max_bytes":
            self._count_close(answer.reason)
            self._stop_reading()
            return
        self.transport.close()
        if answer.reason == "blocked":
            self._services.spawn(self._services.guard.blocked(self, self.remote_address))

    def _stop_reading(self) -> None:
        """Read nothing more (what was read and not parsed is dropped: autobahn's frame loop
        stops once ``data`` is empty) and drop the client after ``REFUSED_LINGER`` seconds."""
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
        self._deflate_window = negotiated_window(self._perMessageCompress)
        # What autobahn reads only during the handshake (the parsed headers stay in
        # http_headers): about 0.6 KiB less for every idle connection.
        self.http_request_data, self.http_response_data = b"", ""
        self.http_status_line = self._wskey = ""
        self.websocket_protocols = []
        self._services.register(self)
        self.session.opened()

    def joined(self) -> None:
        """The session is established (v1: on open, v2: WELCOME sent): ``client_connected``."""
        self._joined = True
        self._jobs.put(self._connected)

    async def _connected(self) -> None:
        await self._services.dispatcher.dispatch(CLIENT_CONNECTED, ClientConnectedEvent(self))

    def _fail_connection(self, code: int = CLOSE_GOING_AWAY, reason: str = "going away") -> None:
        """Autobahn refused a frame before ``onMessage`` (too big, not UTF-8, bad framing)."""
        why = LIBRARY_CLOSE_REASONS.get(code)
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

    def flush(self) -> None:
        """Write the frames queued this loop turn, in order, in one write."""
        self._output.flush()

    def pause_writing(self) -> None:
        """asyncio: the unsent bytes passed ``max_outgoing_buffer`` (``Output.pause``)."""
        self._output.pause()

    def resume_writing(self) -> None:
        """asyncio: the backlog drained."""
        self._output.resume()

    def abort(self, reason: str) -> None:
        """Drop the TCP connection now (a client that does not read), ``reason`` logged."""
        self.wasNotCleanReason = reason
        self.dropConnection(abort=True)

    def send_event(self, topic: str, payload: Any) -> bool:
        """EVENT to this client only; v1: whether or not it subscribed, v2: if it subscribed."""
        return self.session.event(topic, payload)

    def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        """Start the closing handshake with any code (autobahn's sendClose refuses 1001-2999)."""
        if self.state == _STATE_OPEN:
            self.session.closing(code, reason)
            self.flush()  # queued frames go before the close frame
            # A close reason holds at most 123 bytes; never cut a UTF-8 sequence in half.
            reason_utf8 = reason.encode()[:123].decode("utf-8", "ignore").encode()
            self.sendCloseFrame(code=code, reasonUtf8=reason_utf8, isReply=False)

    def refuse(self) -> None:
        """Close with 1008 once the client was told that a secured topic refused it."""
        self.close(CLOSE_POLICY_VIOLATION, "refused by a secured topic")

    def fail(self, reason: str, error: BaseException | None = None) -> None:
        """Close this connection because of what it sent, with the error's ``code`` (1007 by
        default; 1008 for a spent budget, whose reads then stop); the server carries on."""
        if self._closed or self.state != _STATE_OPEN:
            return
        code, why = close_for(error)
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

    @property
    def _log_extra(self) -> dict[str, str]:
        return {"conn_id": self.session_id}

    # -- input ------------------------------------------------------------------------------

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self._services.stats.frames_in += 1
        if not self._closed and self.state == _STATE_OPEN:
            try:
                self._budgets.message(time.monotonic())
            except LimitExceeded as over:
                self.fail(str(over), over)
                return
            self.session.receive(payload, isBinary)

    def onPing(self, payload: bytes) -> None:
        """Pong, within ``pings_per_second``; a ping flood is a write amplifier: close 1008."""
        try:
            self._budgets.ping(time.monotonic())
        except LimitExceeded as over:
            if self.state == _STATE_OPEN:
                self.fail(str(over), over)
            return
        super().onPing(payload)

    def enqueue(self, job: Job) -> None:
        """Run ``job`` after the jobs queued before it (raises ``LimitExceeded``)."""
        self._jobs.put(job)

    def enqueue_call(self, job: Job) -> None:
        """``enqueue`` an RPC call, counted until answered (raises ``LimitExceeded``)."""
        self._jobs.put_call(job)

    def __repr__(self) -> str:
        return f"WampConnection({self.session_id}, {self.remote_address})"


_EVENT_NAMES: dict[tuple[str, ...], list[str]] = {}
"""autobahn's observable event names, one list per distinct set (``set_valid_events``)."""


class SmallQueue(list[Any]):
    """The part of ``deque`` that autobahn's receive and send queues use (append, popleft,
    clear, len), on a list: they rarely hold more than two items, so ``pop(0)`` is cheap."""

    __slots__ = ()

    def popleft(self) -> Any:
        return self.pop(0)


class WampServerFactory(WebSocketServerFactory):
    """Builds a ``WampConnection`` per TCP connection; create it inside the running loop."""

    protocol = WampConnection

    def __init__(self, services: ConnectionServices, url: str) -> None:
        loop = asyncio.get_running_loop()
        super().__init__(url, loop=loop, server=SERVER_AGENT)  # type: ignore[no-untyped-call]
        self.services = services
        max_head = services.limits.handshake_max_bytes
        self.gate = HttpGate(services.guard, max_head, services.health)
        self.protocol = with_options(type(self).protocol, self)

    def setProtocolOptions(self, *args: Any, **kwargs: Any) -> None:  # noqa: N802
        """Set autobahn's options; new connections see them through their class (below)."""
        super().setProtocolOptions(*args, **kwargs)  # type: ignore[no-untyped-call]
        self.protocol = with_options(type(self).protocol, self)

    def frame(self, payload: bytes, binary: bool = False) -> bytes:
        """The wire bytes of one unmasked server frame of ``payload``, uncompressed."""
        prepared = self.prepareMessage(payload, isBinary=binary, doNotCompress=True)
        return prepared.payloadHybi  # type: ignore[no-any-return]


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
