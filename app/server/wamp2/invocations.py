"""The calls in flight between clients: CALL → INVOCATION → YIELD/ERROR → RESULT/ERROR.

The dealer (dealer.py) finds the registration a call goes to and hands the call here. Each
invocation is kept until its final answer, its cancel, its timeout or one side leaving, with the
budgets of ``server.limits`` per caller and per callee; nothing of a call is kept after that,
and a late YIELD or ERROR for a forgotten invocation is dropped quietly (the spec's rule for a
gone caller, applied to every end). Callers are v2 sessions (ERROR/RESULT frames) or v1
sessions (a future, see ``Reply``); callees are v2 sessions (``CalleeEnd``).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from gos_web_socket.app.limits import check_count
from gos_web_socket.app.server.wamp2.answers import payload
from gos_web_socket.app.server.wamp2.codes import (
    CANCELED,
    INTERRUPT,
    INVOCATION,
    TIMEOUT,
    UNAVAILABLE,
)
from gos_web_socket.app.server.wamp2.registrations import CalleeEnd, Registration
from gos_web_socket.settings.models import LimitsSettings

logger = logging.getLogger(__name__)

CANCEL_MODES = ("skip", "kill", "killnowait")
DEFAULT_CANCEL_MODE = "killnowait"
"""CANCEL without ``mode`` (autobahn-python sends none): answer at once, interrupt the callee."""


class Reply(Protocol):
    """Where a call's answers go: the caller's session, in its own protocol."""

    def progress(self, args: list[Any], kwargs: dict[str, Any]) -> None: ...

    def result(self, args: list[Any], kwargs: dict[str, Any]) -> None: ...

    def error(self, uri: str, args: list[Any], kwargs: dict[str, Any]) -> None: ...


@dataclass(slots=True)
class Invocation:
    """One call in flight: who asked (caller session and request id), who answers, the timer."""

    id: int
    callee: CalleeEnd
    caller: str
    request: int
    reply: Reply
    timeout: float
    timer: asyncio.TimerHandle | None = None
    progressed: int = field(default=0)


class Invocations:
    """The invocations in flight, by id, with their budgets (``server.limits``)."""

    def __init__(self, limits: LimitsSettings | None = None) -> None:
        self.limits = limits or LimitsSettings()
        self._invocations: dict[int, Invocation] = {}
        self._calls: dict[tuple[str, int], int] = {}
        """(caller session, CALL request id) → invocation id, for CANCEL."""
        self._calling: dict[str, int] = {}
        """Invocations in flight per caller session."""
        self._serving: dict[str, int] = {}
        """Invocations in flight per callee session."""
        self._ids = itertools.count(1)

    @property
    def in_flight(self) -> int:
        """Invocations waiting for their final answer (a gauge, and what the leak tests read)."""
        return len(self._invocations)

    def new_request_id(self) -> int:
        """A request id for a caller that has none of its own (a v1 CALL)."""
        return next(self._ids)

    def pending(self, session_id: str) -> tuple[int, int]:
        """Invocations in flight that ``session_id`` made, and that it serves."""
        return self._calling.get(session_id, 0), self._serving.get(session_id, 0)

    def call(
        self,
        registration: Registration,
        caller: str,
        request: int,
        arguments: tuple[list[Any], dict[str, Any]],
        details: dict[str, Any],
        reply: Reply,
        timeout_ms: int = 0,
        budget: bool = True,
    ) -> None:
        """Send INVOCATION to the registration's callee; the answers reach ``reply``.

        ``details`` are the INVOCATION's (``receive_progress`` when both ends do progress);
        ``timeout_ms`` (the caller's ``timeout`` option, 0: none) can only shorten
        ``server.limits.call_timeout``. A call another worker relays (``budget`` False) was
        counted against its caller there.

        Raises:
            LimitExceeded: the caller has ``max_pending_calls`` calls in flight already.
        """
        limits = self.limits
        if budget:
            calls = self._calling.get(caller, 0)
            check_count("max_pending_calls", calls, limits.max_pending_calls, "calls not answered")
        callee = registration.callee
        busy = limits.max_pending_invocations
        if self._serving.get(callee.session_id, 0) >= busy:
            desc = f"the callee of {registration.uri} serves {busy} calls already"
            desc += " (server.limits.max_pending_invocations)"
            reply.error(UNAVAILABLE, [desc], {})
            return
        timeout = limits.call_timeout
        if timeout_ms > 0:
            timeout = min(timeout, timeout_ms / 1000)
        invocation = Invocation(next(self._ids), callee, caller, request, reply, timeout)
        self._invocations[invocation.id] = invocation
        self._calls[caller, request] = invocation.id
        _count(self._calling, caller, 1)
        _count(self._serving, callee.session_id, 1)
        self._arm(invocation)
        args, kwargs = arguments
        message: list[Any] = [INVOCATION, invocation.id, registration.id, details]
        if not callee.send(message + payload(args, kwargs)):
            self._end(invocation, CANCELED, f"the callee of {registration.uri} cannot be reached")

    def yielded(
        self,
        callee: str,
        invocation_id: int,
        args: list[Any],
        kwargs: dict[str, Any],
        progress: bool,
    ) -> bool:
        """YIELD from ``callee``: a progressive result, or the final one (the call ends).
        False: no such invocation (ended, or another callee's)."""
        invocation = self._invocation(callee, invocation_id)
        if invocation is None:
            return False
        if not progress:
            self._forget(invocation)
            invocation.reply.result(args, kwargs)
            return True
        invocation.progressed += 1
        if invocation.progressed > self.limits.max_progressive_results:
            desc = "more progressive results than server.limits.max_progressive_results"
            self._end(invocation, CANCELED, desc, interrupt=True)
            return True
        self._arm(invocation)  # a timeout counts between results
        invocation.reply.progress(args, kwargs)
        return True

    def failed(
        self, callee: str, invocation_id: int, uri: str, args: list[Any], kwargs: dict[str, Any]
    ) -> bool:
        """ERROR from ``callee``: passed to the caller unchanged (URI, arguments), the call
        ends. False: no such invocation."""
        invocation = self._invocation(callee, invocation_id)
        if invocation is None:
            return False
        self._forget(invocation)
        invocation.reply.error(uri, args, kwargs)
        return True

    def cancel(self, caller: str, request: int, mode: str) -> None:
        """CANCEL of a call in flight (``mode``: skip, kill, killnowait); unknown: ignored.

        A callee without ``call_canceling`` is never interrupted: every mode is ``skip``.
        """
        invocation_id = self._calls.get((caller, request))
        invocation = None if invocation_id is None else self._invocations.get(invocation_id)
        if invocation is None:
            return
        if mode == "kill" and invocation.callee.cancels:
            invocation.callee.send([INTERRUPT, invocation.id, {"mode": "kill"}])
            return  # the caller gets what the callee answers next
        self._end(invocation, CANCELED, "canceled by the caller", interrupt=mode != "skip")

    def leave(self, session_id: str) -> None:
        """A session is gone: the calls it serves fail with ``canceled``, the calls it made
        are forgotten and their callees interrupted."""
        if session_id not in self._calling and session_id not in self._serving:
            return
        for invocation in [i for i in self._invocations.values() if session_id in _ends(i)]:
            if invocation.callee.session_id == session_id:
                self._end(invocation, CANCELED, "the callee left before answering")
            else:
                self._forget(invocation)
                _interrupt(invocation)

    # -- the life of one invocation ------------------------------------------------------------

    def _invocation(self, callee: str, invocation_id: int) -> Invocation | None:
        """The invocation ``callee`` answers; None: forgotten, or not this callee's."""
        invocation = self._invocations.get(invocation_id)
        if invocation is None or invocation.callee.session_id != callee:
            logger.debug("session %s answered unknown invocation %d", callee, invocation_id)
            return None
        return invocation

    def _arm(self, invocation: Invocation) -> None:
        if invocation.timer is not None:
            invocation.timer.cancel()
        loop = asyncio.get_running_loop()
        invocation.timer = loop.call_later(invocation.timeout, self._expire, invocation.id)

    def _expire(self, invocation_id: int) -> None:
        invocation = self._invocations.get(invocation_id)
        if invocation is not None:
            desc = f"no answer from the callee within {invocation.timeout:g} s"
            self._end(invocation, TIMEOUT, desc, interrupt=True)

    def _end(self, invocation: Invocation, uri: str, desc: str, interrupt: bool = False) -> None:
        """Answer the caller ERROR ``uri`` now and forget the call; interrupt the callee too."""
        self._forget(invocation)
        if interrupt:
            _interrupt(invocation)
        invocation.reply.error(uri, [desc], {})

    def _forget(self, invocation: Invocation) -> None:
        del self._invocations[invocation.id]
        self._calls.pop((invocation.caller, invocation.request), None)
        if invocation.timer is not None:
            invocation.timer.cancel()
            invocation.timer = None
        _count(self._calling, invocation.caller, -1)
        _count(self._serving, invocation.callee.session_id, -1)


def _ends(invocation: Invocation) -> tuple[str, str]:
    return invocation.caller, invocation.callee.session_id


def _count(table: dict[str, int], session: str, delta: int) -> None:
    """Add ``delta`` to a per-session count; a count back at 0 leaves the table."""
    count = table.get(session, 0) + delta
    if count:
        table[session] = count
    else:
        table.pop(session, None)


def _interrupt(invocation: Invocation) -> None:
    """INTERRUPT killnowait, to a callee that announced ``call_canceling`` only."""
    if invocation.callee.cancels:
        invocation.callee.send([INTERRUPT, invocation.id, {"mode": "killnowait"}])
