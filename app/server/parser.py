"""The part of a connection that reads: autobahn's frame parser, fed within a client's budgets.

``InboundBudgets`` (budgets.py) counts; ``FedParser`` applies the counts to what autobahn parses:
frames and bytes per loop turn (then reads pause and the rest is parsed next turn), frames,
pings and answered calls per second (past them: ``fail``, a 1008 close). Autobahn's internals it
uses are listed in app/server/connection.py's docstring.
"""

from __future__ import annotations

import abc
import asyncio
import time
from typing import cast

from autobahn.asyncio.websocket import WebSocketServerProtocol

from gos_web_socket.app.exceptions import LimitExceeded
from gos_web_socket.app.server.budgets import InboundBudgets

STATE_OPEN = WebSocketServerProtocol.STATE_OPEN
STATE_CONNECTING = WebSocketServerProtocol.STATE_CONNECTING
_STATE_CLOSING = WebSocketServerProtocol.STATE_CLOSING
_PARSING = (STATE_OPEN, _STATE_CLOSING)
PARSE_FEED = 4096
"""Bytes autobahn's parser holds at once (``_dataReceived``): it copies them once per frame."""


class FedParser(WebSocketServerProtocol):
    """Autobahn's frame parser, fed in pieces and within a client's budgets (the part of the
    adapter that reads): every frame counts (``frames_per_second``), at most
    ``frames_per_turn`` frames and ``read_bytes_per_turn`` bytes are parsed per loop turn
    (then reads pause and the rest is parsed next turn), and the parser never holds more than
    ``PARSE_FEED`` bytes. A subclass says how a client over its budget is closed (``fail``)."""

    _budgets: InboundBudgets
    _refused = _parse_scheduled = False
    """Refused (431, a spent budget): input is ignored. Parse scheduled: this turn's budget
    was spent, reads paused, the rest parsed next turn."""
    _pending = bytearray()
    """Read, not yet given to autobahn's parser (``_dataReceived``); never mutated when empty."""

    def _dataReceived(self, data: bytes) -> None:  # noqa: N802
        """Once open, what a read brings waits in ``_pending`` and autobahn's parser gets it
        ``PARSE_FEED`` bytes at a time: it copies its whole buffer once per frame, so a 256 KiB
        read of one-byte frames cost 37,000 copies of up to 256 KiB (seconds of loop time)."""
        state = self.state
        if (state != STATE_OPEN and state != _STATE_CLOSING) or (
            not self._pending and len(data) + len(self.data) <= PARSE_FEED
        ):
            super()._dataReceived(data)  # the handshake, or a small read: as autobahn does
            return
        if self._pending:
            self._pending += data
        else:
            self._pending = bytearray(data)
        self.consumeData()

    def consumeData(self) -> None:
        """A loop turn's parsing of this client starts: its per-turn budget is full again."""
        self._budgets.turn(len(self.data) + len(self._pending))
        super().consumeData()

    def processData(self) -> bool:
        """Parse one step; at a frame boundary with this turn's budget spent, stop reading and
        parse the rest next turn (``frames_per_turn``, ``read_bytes_per_turn``)."""
        pending = self._pending
        if self.current_frame is None and self._budgets.turn_spent(len(self.data) + len(pending)):
            self._parse_next_turn()
            return False
        if pending and len(self.data) < PARSE_FEED:
            self.data += pending[:PARSE_FEED]
            del pending[:PARSE_FEED]
            if not pending:
                del self._pending  # back to the shared empty class default
        if super().processData():
            return True
        # Autobahn parsed what it was given: go on while more waits and the client is read.
        return bool(self._pending) and not self._refused and self.state in _PARSING

    def _parse_next_turn(self) -> None:
        if not self._parse_scheduled:
            self._parse_scheduled = True
            transport = cast(asyncio.Transport, self.transport)  # set: data was just read
            transport.pause_reading()
            asyncio.get_running_loop().call_soon(self._parse_on)

    def _parse_on(self) -> None:
        """The next turn: parse what is buffered, then read again (unless refused or gone)."""
        self._parse_scheduled = False
        transport = cast(asyncio.Transport | None, self.transport)
        if transport is None or self._refused or transport.is_closing():
            return
        transport.resume_reading()  # paused again below if this turn's budget runs out
        self.consumeData()

    def onFrameBegin(self) -> None:
        """Every frame counts against ``frames_per_second``: fragments and control frames."""
        super().onFrameBegin()
        try:
            self._budgets.frame(time.monotonic())
        except LimitExceeded as over:
            if self.state == STATE_OPEN:
                self.fail(str(over), over)

    def answered(self) -> None:
        """One of this client's messages was dealer traffic that got its answer (a CALL of a
        client procedure answered with RESULT, a callee's final YIELD or ERROR): it does not
        count against ``messages_per_second`` but against ``calls_per_second``: past it,
        close 1008 (docs/wamp2.md, Budgets)."""
        try:
            self._budgets.answered(time.monotonic())
        except LimitExceeded as over:
            self.fail(str(over), over)

    def onPing(self, payload: bytes) -> None:
        """Pong, within ``pings_per_second``; a ping flood is a write amplifier: close 1008."""
        try:
            self._budgets.ping(time.monotonic())
        except LimitExceeded as over:
            if self.state == STATE_OPEN:
                self.fail(str(over), over)
            return
        super().onPing(payload)

    @abc.abstractmethod
    def fail(self, reason: str, error: BaseException | None = None) -> None:
        """Close because of what the client sent (``WampConnection.fail``). Abstract for the
        type checkers (autobahn's metaclass is ``type``: ABCMeta would change its typing)."""
