"""The plain-HTTP side of a connection: what the gate answers, what an HTTP path takes over.

Before the WebSocket handshake, ``HttpGate`` (gate.py) reads the request head: it answers some
requests itself (431, 403, ``GET /health``), hands a request to one of the ``HttpTaker``'s paths
(the Mercure hub, app/sse/hub.py) over once its body is in, and lets the rest go on to
autobahn's handshake. A request answered or taken is never read further (``_refused``); a
refused client lingers ``REFUSED_LINGER`` seconds, reads paused, so that it reads its answer.

Requests are worked on at most ``server.limits.handshakes_per_turn`` a loop turn (the
lifecycle's arrivals gate, turn_gate.py): a mass reconnect's requests arrive together, and a
turn that parsed, authenticated and answered all of them held every push meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar, cast

from gos_web_socket.app.server.client import Client, ClientServices
from gos_web_socket.app.server.gate import Answer, HttpGate, ReadOn, Take
from gos_web_socket.app.server.guard import Guard
from gos_web_socket.app.server.lifecycle import Lifecycle
from gos_web_socket.app.server.parser import STATE_CONNECTING, STATE_OPEN, FedParser
from gos_web_socket.app.server.session import Session

logger = logging.getLogger(__name__)

REFUSED_LINGER = 2.5
"""Seconds a refused client's connection stays (reads paused) so that it reads our answer
before the TCP close: closing a socket with unread input sends a reset, which may discard it.
Paused reads block a flooding client's sends, so that its reader gets its turn. The linger
replaces autobahn's closing-handshake timeout, whose batched timer may fire at once: the
client then saw the reset, not the 1008 close. A client that answers the close waits for
the drop, so the linger stays short."""

C_contra = TypeVar("C_contra", contravariant=True)


class HttpTaker(Protocol[C_contra]):
    """What takes a plain HTTP request to one of its paths over (app/sse/hub.py)."""

    @property
    def paths(self) -> frozenset[str]: ...

    @property
    def max_body(self) -> int: ...

    def take(self, connection: C_contra, taken: Take) -> None:
        """Answer with ``connection.reply`` or stream with ``connection.open_stream``."""


class HandshakeSlots(Protocol):
    """What a connection tells the listener's ``HandshakeBudget``."""

    def arrive(self, connection: Client) -> None: ...

    def finish(self, connection: Client) -> None: ...


class HttpServices(ClientServices, Protocol):
    """What the plain-HTTP side needs of its server (``ConnectionServices`` is one)."""

    @property
    def guard(self) -> Guard: ...

    @property
    def spawn(self) -> Callable[[Coroutine[Any, Any, Any]], asyncio.Task[Any]]: ...

    @property
    def http(self) -> HttpTaker[Any] | None: ...


class HttpFactory(Protocol):
    """What the plain-HTTP side needs of its factory (``WampServerFactory`` is one)."""

    @property
    def gate(self) -> HttpGate: ...

    @property
    def lifecycle(self) -> Lifecycle: ...

    @property
    def handshakes(self) -> HandshakeSlots | None: ...


# The ignore: autobahn's own bases disagree on ``peer`` and ``_transport_details``, which mypy
# reports on the first class that adds a base of its own.
class PlainHttp(Client, FedParser):  # type: ignore[misc]
    """A ``Client`` whose request the gate may answer, or hand to an ``HttpTaker`` that replies
    or streams, before (instead of) the WebSocket handshake."""

    factory: HttpFactory
    _services: HttpServices  # pyright: ignore[reportIncompatibleVariableOverride]

    # Class defaults, on an instance only once they change (see Client).
    _origin_seen = False
    _raw_origin: str | None = None

    def handshake_over(self) -> None:
        """Opened, refused or lost: the listener may accept another connection."""
        if self.factory.handshakes is not None:
            self.factory.handshakes.finish(self)

    _awaiting_turn = False
    """Its request waits for a turn of the arrivals gate, reads paused (``processHandshake``)."""

    def processHandshake(self) -> None:
        """Autobahn read (more of) the request: it is worked on when the arrivals gate gives
        this connection its turn, at once unless a mass reconnect's requests queue. A queued
        one is not read meanwhile (the head's size is checked when its turn comes)."""
        if self._awaiting_turn:
            return
        if not self.factory.lifecycle.arrivals.call(self._handshake_turn):
            self._awaiting_turn = True
            cast(asyncio.Transport, self.transport).pause_reading()

    def _handshake_turn(self) -> None:
        transport = cast(asyncio.Transport | None, self.transport)
        if self._awaiting_turn:
            del self._awaiting_turn  # back to the class default
            if transport is not None and not transport.is_closing():
                transport.resume_reading()
        gone = self.lost or transport is None or transport.is_closing()
        if gone or self._refused or self.state != STATE_CONNECTING:
            return  # gone (its connection_lost perhaps not run yet), answered or timed out
        try:
            self._read_request()
        except Exception:  # as a failing data_received did: this client only, logged
            logger.exception("connection %s: its request failed", self.session_id)
            self.dropConnection(abort=True)

    def _read_request(self) -> None:
        """What the gate answers or takes, or autobahn's handshake."""
        if not self._origin_seen:  # None: the head is not complete yet
            verdict = self.factory.gate.check(self.data, self.remote_address, self.session_id)
            if isinstance(verdict, Answer):
                self.remote_address = verdict.address
                self._answer(verdict)
                return
            if isinstance(verdict, ReadOn):
                return  # a request to an HTTP path: its body is on its way
            if isinstance(verdict, Take):
                self._take(verdict)
                return
            if verdict is not None:
                self._origin_seen = True
                self.remote_address, self._raw_origin = verdict.address, verdict.origin
                self.data = verdict.data
        super().processHandshake()

    def _answer(self, answer: Answer) -> None:
        """The gate answered the request: write it and end (a 431 lingers, reads stopped);
        a client gone meanwhile (a hub POST answered late) gets nothing."""
        self._refused, self.data = True, b""
        self.handshake_over()
        if self.lost:
            return
        transport = cast(asyncio.Transport, self.transport)  # set: the request was read from it
        transport.write(answer.reply)
        if answer.reason == "handshake_max_bytes":
            self.factory.lifecycle.count_close(self, answer.reason)
            self.stop_reading()
            return
        transport.close()
        if answer.reason == "blocked":
            self._services.spawn(self._services.guard.blocked(self, self.remote_address))

    def _take(self, taken: Take) -> None:
        """A plain HTTP request to the hub's paths: its handler answers or streams; what the
        client sends afterwards is not read (``_refused``)."""
        self._refused, self.data, self.remote_address = True, b"", taken.address
        self.handshake_over()
        self.end_handshake_timeout()
        assert self._services.http is not None  # the gate takes nothing without it
        self._services.http.take(self, taken)

    def end_handshake_timeout(self) -> None:
        """Stop autobahn's opening-handshake timeout: a taken request's head and body came in
        time, and its answer (a slow publish, a stream) must not be dropped half-way."""
        timeout = self.openHandshakeTimeoutCall
        if timeout is not None:
            timeout.cancel()
            self.openHandshakeTimeoutCall = None

    def reply(self, response: bytes) -> None:
        """A whole HTTP response to a taken request, then the end of the connection."""
        self._answer(Answer(response, "http", self.remote_address))

    @property
    def streaming(self) -> bool:
        """True for a taken request answered with a stream (Server-Sent Events)."""
        return self._refused and self.state == STATE_OPEN

    def open_stream(self, session: Session[Any], head: bytes) -> bool:
        """Answer a taken request with ``head`` and keep the connection as a subscriber that
        ``session`` frames for (counted, registered, cut off and closed like a WebSocket
        client); False when the client is gone already."""
        transport = cast(asyncio.Transport | None, self.transport)
        if transport is None or transport.is_closing():
            return False
        self.session, self.state = session, STATE_OPEN
        transport.write(head)
        self.factory.lifecycle.open(self)
        self.joined()
        return True

    def joined(self) -> None:
        """The session is established (v1: on open, v2: WELCOME sent): ``client_connected``."""
        self.factory.lifecycle.join(self)

    def stop_reading(self) -> None:
        """Read and parse nothing more; drop the client after ``REFUSED_LINGER`` seconds."""
        self._refused, self.data = True, b""
        self.__dict__.pop("_pending", None)
        self.receive_queue.clear()
        timeout, self.closeHandshakeTimeoutCall = self.closeHandshakeTimeoutCall, None
        if timeout is not None:
            timeout.cancel()  # the linger decides when the client goes
        transport = cast(asyncio.Transport | None, self.transport)
        if transport is not None and not transport.is_closing():
            transport.pause_reading()
            asyncio.get_running_loop().call_later(REFUSED_LINGER, self._drop_refused)

    def _drop_refused(self) -> None:
        if self.transport is not None:
            self.dropConnection(abort=True)
