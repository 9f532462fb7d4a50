"""One client's WebSocket connection: a thin adapter over autobahn's asyncio protocol.

The connection holds one WAMP session (app/server/session.py: parsing and encoding) and wires
autobahn's callbacks to objects that know nothing of autobahn, each tested without a socket:

- ``HttpGate`` (gate.py): before the handshake, 431 for a head over ``handshake_max_bytes``,
  a blocked peer or forwarded client (403), a plain ``GET /health``, the ``Origin`` without a
  scheme that the PHP client sends;
- ``Output`` (output.py): frames batched per loop turn, back-pressure, slow readers cut off;
- ``InboundBudgets`` (budgets.py): messages, pings and frames per second; frames and bytes
  parsed per loop turn, applied by ``FedParser`` (parser.py), the connection's base: autobahn's
  parser fed 4 KiB at a time, stopped at a frame boundary when the turn's budget is spent
  (reads paused, the rest parsed next turn);
- ``PlainHttp`` (plain_http.py), the base above it: what the gate answers before the handshake,
  the requests an ``HttpTaker`` (the SSE hub) answers or streams, a refused client's linger;
- ``JobQueue`` (jobs.py): the session's requests in arrival order, queued jobs and pending calls;
- ``Lifecycle`` (lifecycle.py, one per server): registered on open, ``client_connected``, gone
  whatever state its handshake was in, closes counted and logged once;
- ``Closing`` (closing.py), the base above ``PlainHttp``: every way a connection ends, and
  the teardown of a lost one spread over loop turns, then its release;
- ``Client`` (client.py), the first base: the attributes user hooks see.

Also here: a session's first frame (v1 WELCOME) leaves in the same ``transport.write`` as the
101 (``send_now``: the PHP client reads once); what breaks the protocol closes this connection
only, with the error's code (app/close_codes.py) and one log line (``Closing.fail``).

Every use of autobahn's internals is in this module and its bases, parser.py, plain_http.py and
closing.py (tests/server/test_autobahn_internals.py fails, naming it, when one disappears from
the installed autobahn): ``data`` (the read buffer), ``receive_queue``/``send_queue``,
``_valid_events``/``_results`` (``set_valid_events``), ``sendData`` shadowed in
``succeedHandshake``, ``_fail_connection``, ``_perMessageCompress``, the handshake leftovers
(``http_request_data``, ``http_response_data``, ``http_status_line``, ``_wskey``,
``websocket_protocols``), ``wasNotCleanReason``,
``_dataReceived``/``consumeData``/``processData``/``current_frame``/``onFrameBegin`` (the
parser fed in pieces, the per-turn and per-frame budgets), ``CONFIG_ATTRS`` (``with_options``)
and ``prepareMessage``'s ``payloadHybi`` (``WampServerFactory.frame``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from autobahn.asyncio.websocket import WebSocketServerFactory
from autobahn.websocket.types import ConnectionRequest

from gos_web_socket.app.events import (
    EventDispatcher,
)
from gos_web_socket.app.exceptions import LimitExceeded
from gos_web_socket.app.server.budgets import InboundBudgets
from gos_web_socket.app.server.closing import Closing
from gos_web_socket.app.server.compression import negotiated_window
from gos_web_socket.app.server.footprint import SmallQueue, shared_event_names, with_options
from gos_web_socket.app.server.gate import HttpGate
from gos_web_socket.app.server.guard import Guard
from gos_web_socket.app.server.jobs import JobQueue
from gos_web_socket.app.server.lifecycle import Lifecycle
from gos_web_socket.app.server.memory import OutgoingBudget
from gos_web_socket.app.server.output import Flusher, Output, write_paced
from gos_web_socket.app.server.parser import STATE_OPEN
from gos_web_socket.app.server.plain_http import HandshakeSlots, HttpTaker
from gos_web_socket.app.server.session import SERVER_AGENT, Session
from gos_web_socket.app.stats import ServerStats
from gos_web_socket.settings.models import LimitsSettings

if TYPE_CHECKING:
    from gos_web_socket.app.auth.authenticator import Authenticator


@dataclass(frozen=True, slots=True)
class ConnectionServices:
    """What a connection needs of its server, and nothing more."""

    guard: Guard
    dispatcher: EventDispatcher
    stats: ServerStats
    max_outgoing_buffer: int
    spawn: Callable[[Coroutine[Any, Any, Any]], asyncio.Task[Any]]
    """Run a coroutine as a task that the server cancels on stop."""
    flusher: Flusher
    """The end of the loop turn: ``connection.flush()`` is run there once (live.py)."""
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
    outgoing: OutgoingBudget = field(default_factory=OutgoingBudget.unlimited)
    """Bytes queued to all clients together (``server.max_outgoing_total``, memory.py)."""
    http: HttpTaker[WampConnection] | None = None
    """Takes plain HTTP requests to its ``paths`` (the Mercure hub, app/sse); None: none."""


class WampConnection(Closing):
    """A ``Client`` (app/server/client.py: what user hooks see) on autobahn's protocol: its
    WebSocket side and its writes, with what it reads (``FedParser``), its plain HTTP
    (``PlainHttp``) and how it ends (``Closing``)."""

    factory: WampServerFactory  # pyright: ignore[reportIncompatibleVariableOverride]
    # A connection's services are a client's and more; set once, in connection_made.
    _services: ConnectionServices  # pyright: ignore[reportIncompatibleVariableOverride]
    _output: Output
    _budgets: InboundBudgets

    def set_valid_events(self, valid_events: list[str] | None = None) -> None:
        """Shared event names (autobahn only reads them) and an empty results dict."""
        self._valid_events = shared_event_names(valid_events)
        self._results: dict[str, Any] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        services = self.factory.services
        self._services = services  # pyright: ignore[reportIncompatibleVariableOverride]
        peer = transport.get_extra_info("peername")
        self.remote_address = str(peer[0]).removeprefix("::ffff:") if peer else ""
        if self.factory.gate.refuses_peer(self.remote_address):
            self._blocked = True  # GOS's BlockedIpCheck: close before any HTTP, no reply
            transport.close()
            services.spawn(services.guard.blocked(self, self.remote_address))
            return
        self._jobs = JobQueue(self.session_id, services.spawn, services.limits, self.fail)
        self._budgets = InboundBudgets(services.limits)
        self._output = output = Output(self, services, STATE_OPEN)
        self.write_frame: Callable[[bytes], bool] = output.write
        """``Output.write`` (False: not open), bound: the fan-out calls it once per subscriber."""
        self.write_now: Callable[[bytes], bool] = output.write_now
        """``Output.write_now``, bound: a lone push calls it once per subscriber (topic.py)."""
        super().connection_made(transport)  # type: ignore[no-untyped-call]
        # Empty nearly always: an empty deque keeps a 0.7 KiB block, an empty list 56 bytes.
        self.receive_queue = SmallQueue()  # type: ignore[assignment]
        self.send_queue = SmallQueue()  # type: ignore[assignment]
        # asyncio calls pause_writing() once the unsent bytes pass this mark.
        limit = services.max_outgoing_buffer
        cast(asyncio.WriteTransport, transport).set_write_buffer_limits(high=limit)
        if self.factory.handshakes is not None:
            self.factory.handshakes.arrive(self)

    def data_received(self, data: bytes) -> None:
        if not self._blocked and not self._refused:
            super().data_received(data)  # type: ignore[no-untyped-call]

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
        self.handshake_over()
        if self.lost or self.transport is None:
            return  # the handshake completed after the connection was gone: no session
        self._deflate_window = negotiated_window(self._perMessageCompress)
        # Read only during the handshake: 0.6 KiB less per idle connection.
        self.http_request_data, self.http_response_data = b"", ""
        self.http_status_line = self._wskey = ""
        self.websocket_protocols = []
        self.factory.lifecycle.open(self)
        self.session.opened()

    def sendData(  # noqa: N802  # autobahn's name
        self, data: bytes, sync: bool = False, chopsize: int | None = None
    ) -> None:
        """Autobahn's every write (pings, close frames, the 101, ``send_now``); none once the
        connection is lost: its teardown may wait for a later turn while autobahn's timers
        still run, and uvloop refuses a write to a closed transport."""
        if not self.lost:
            super().sendData(data, sync, chopsize)

    def send_now(self, frame: bytes) -> None:
        """Write ``frame`` at once; from ``Session.opened`` it shares the 101's write."""
        self.sendData(frame)
        self._services.stats.frames_out += 1

    def flush(self) -> None:
        """Write the frames queued this loop turn, in order, in one write."""
        self._output.flush()

    async def write_paced(self, frames: Iterable[bytes]) -> bool:
        """Queue ``frames`` at the pace this client reads them (a replay: ``write_paced`` in
        output.py); False when the connection closed on the way."""
        return await write_paced(self._output, frames, self._services.max_outgoing_buffer)

    def filter_writes(self, fresh: Callable[[bytes], bytes]) -> None:
        """Pass every frame the fan-out writes through ``fresh`` (an SSE subscriber drops the
        events it already got); a frame it empties is not queued (``write_frame``), while
        ``write_now`` still writes what was queued before it."""
        write, write_now = self._output.write, self._output.write_now

        def filtered(frame: bytes) -> bool:
            kept = fresh(frame)
            return write(kept) if kept else True

        self.write_frame = filtered
        self.write_now = lambda frame: write_now(fresh(frame))

    def pause_writing(self) -> None:
        """asyncio: the unsent bytes passed ``max_outgoing_buffer`` (``Output.pause``)."""
        self._output.pause()

    def resume_writing(self) -> None:
        """asyncio: the backlog drained."""
        self._output.resume()

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self._services.stats.frames_in += 1
        if not self.closed and self.state == STATE_OPEN:
            try:
                self._budgets.message(time.monotonic())
            except LimitExceeded as over:
                self.fail(str(over), over)
                return
            self.session.receive(payload, isBinary)


class WampServerFactory(WebSocketServerFactory):
    """Builds a ``WampConnection`` per TCP connection; create it inside the running loop."""

    protocol = WampConnection
    handshakes: HandshakeSlots | None = None  # the Listener's HandshakeBudget

    def __init__(self, services: ConnectionServices, url: str) -> None:
        loop = asyncio.get_running_loop()
        super().__init__(url, loop=loop, server=SERVER_AGENT)  # type: ignore[no-untyped-call]
        self.services = services
        max_head = services.limits.handshake_max_bytes
        http = services.http
        paths = frozenset() if http is None else http.paths
        max_body = 0 if http is None else http.max_body
        self.gate = HttpGate(services.guard, max_head, services.health, paths, max_body)
        self.lifecycle = Lifecycle(services)
        self.protocol = with_options(type(self).protocol, self)

    def setProtocolOptions(self, *args: Any, **kwargs: Any) -> None:  # noqa: N802
        """Set autobahn's options; new connections see them through their class (below)."""
        super().setProtocolOptions(*args, **kwargs)  # type: ignore[no-untyped-call]
        self.protocol = with_options(type(self).protocol, self)

    def frame(self, payload: bytes, binary: bool = False) -> bytes:
        """The wire bytes of one unmasked server frame of ``payload``, uncompressed."""
        prepared = self.prepareMessage(payload, isBinary=binary, doNotCompress=True)
        return prepared.payloadHybi  # type: ignore[no-any-return]
