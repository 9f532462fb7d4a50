"""How a connection ends: the closes the server starts, autobahn's, and a lost TCP connection.

``Closing`` is the base of ``WampConnection`` (connection.py) that holds every way out:
``close`` (any code; a stream ends its response), ``refuse`` and ``fail`` (what the client sent
closes it, with the error's code, app/close_codes.py), ``abort`` (a reader too slow), autobahn's
own ``_fail_connection`` and ``onClose``; and what follows the loss of the TCP connection. That
part is split in two: ``connection_lost`` stops everything that could still touch the
connection at once (writes, jobs, timers, its handshake slot), and the rest (autobahn's
teardown, the departure from topics and presence) waits its turn at the departures gate
(turn_gate.py), because a mass drop loses thousands of connections in one loop turn. Once both
are done, ``release`` lets go of what points back at the connection, so that reference counting
frees it without the garbage collector.
"""

from __future__ import annotations

import asyncio
import logging
from typing import cast

from gos_web_socket.app.close_codes import (
    CLOSE_GOING_AWAY,
    CLOSE_MESSAGE_TOO_BIG,
    CLOSE_NORMAL,
    CLOSE_POLICY_VIOLATION,
    LIBRARY_CLOSE_REASONS,
)
from gos_web_socket.app.exceptions import LimitExceeded
from gos_web_socket.app.server.output import Output
from gos_web_socket.app.server.parser import STATE_OPEN
from gos_web_socket.app.server.plain_http import PlainHttp

logger = logging.getLogger(__name__)


class Closing(PlainHttp):
    """The ways a connection ends, and what is let go of once it has."""

    _output: Output

    # Class defaults, on an instance only once they change (see Client).
    _blocked = False
    """Closed before any HTTP (``_refused``: see ``FedParser``)."""

    def abort(self, reason: str) -> None:
        """Drop the TCP connection now (a client that does not read), ``reason`` logged."""
        self.wasNotCleanReason = reason
        self.dropConnection(abort=True)

    def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        """Start the closing handshake with any code (autobahn's sendClose refuses 1001-2999);
        a stream ends its HTTP response. A lost connection has nobody to tell."""
        if self.lost:
            return
        if self.streaming:
            self.session.closing(code, reason)
            self._output.flush()
            cast(asyncio.Transport, self.transport).close()
        elif self.state == STATE_OPEN:
            self.session.closing(code, reason)
            self._output.flush()  # queued frames go before the close frame
            # A close reason holds at most 123 bytes; never cut a UTF-8 sequence in half.
            reason_utf8 = reason.encode()[:123].decode("utf-8", "ignore").encode()
            self.sendCloseFrame(code=code, reasonUtf8=reason_utf8, isReply=False)

    def refuse(self) -> None:
        """Close with 1008 once the client was told that a secured topic refused it."""
        self.close(CLOSE_POLICY_VIOLATION, "refused by a secured topic")

    def fail(self, reason: str, error: BaseException | None = None) -> None:
        """Close this connection because of what it sent, with the error's ``code`` (1007 by
        default; 1008 for a spent budget, whose reads then stop); the server carries on."""
        if self.lost or self.closed or self.state != STATE_OPEN:
            return
        self.close(self.factory.lifecycle.failed(self, reason, error), reason)
        if isinstance(error, LimitExceeded):
            self.stop_reading()  # a flood: do not parse the rest of it

    def _fail_connection(self, code: int = CLOSE_GOING_AWAY, reason: str = "going away") -> None:
        """Autobahn refused a frame before ``onMessage`` (too big, not UTF-8, bad framing)."""
        why = LIBRARY_CLOSE_REASONS.get(code)
        if why is not None and self.state == STATE_OPEN:
            self.factory.lifecycle.closed_for(self, code, why, reason)
        super()._fail_connection(code, reason)
        if code == CLOSE_MESSAGE_TOO_BIG:
            self.stop_reading()  # the rest of an oversized message is not worth reading

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        self.factory.lifecycle.gone(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._blocked:
            return
        # Nothing is written to it from now on (pushes, close, sendData), its queued jobs and
        # timers are dropped and its handshake slot freed; the rest, autobahn's teardown and
        # the departure, waits its turn: a mass drop loses thousands of connections in one
        # loop turn (turn_gate.py).
        self.lost = True
        self._output.gone()
        self.handshake_over()
        self.drop_jobs()
        self.stop_timers()
        self.factory.lifecycle.departures.call(self._lost, exc)

    def _lost(self, exc: Exception | None) -> None:
        try:
            super().connection_lost(exc)  # type: ignore[no-untyped-call]
        except asyncio.InvalidStateError:
            # autobahn resolves its is_closed future twice when its opening-handshake timeout
            # dropped a connection whose handshake then completed: onClose never ran.
            logger.debug("connection %s: lost during its handshake", self.session_id)
        finally:
            lifecycle = self.factory.lifecycle
            lifecycle.gone(self)
            self.torn_down = True
            lifecycle.ended(self)

    def release(self) -> None:
        """``Client.release``, and autobahn's parts that point back at the connection: its
        output's link, the futures it resolves with the connection, its reader's waiter."""
        super().release()
        self._output.release()
        for name in ("is_closed", "is_open", "waiter"):
            self.__dict__.pop(name, None)
