"""Background pushes (``confirm_mode: background``): the window of unconfirmed pushes.

``push_sync()`` hands a push to the pusher's home loop and returns; at most ``max_in_flight``
are unconfirmed at a time (``InFlight`` blocks the caller for room), and what failed is kept
for the next ``flush()``/``close()``, which raise ``PushFailed`` listing them.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol

from gos_web_socket.app.exceptions import FailedPush, PushFailed
from gos_web_socket.app.message import Message

if TYPE_CHECKING:
    from gos_web_socket.app.router import Router
    from gos_web_socket.app.stats import PusherStats

__all__ = [
    "LISTED_FAILURES",
    "MAX_KEPT_FAILURES",
    "BackgroundPushes",
    "Bridged",
    "ConfirmMode",
    "Handoff",
    "InFlight",
]

ConfirmMode = Literal["wait", "background"]

MAX_KEPT_FAILURES = 10_000
"""Failed background pushes a pusher keeps for the next ``flush()``; beyond, only a count."""

LISTED_FAILURES = 20
"""Failures spelled out in the ``PushFailed`` message (``failures`` holds them all)."""

Handoff = tuple[str, dict[str, Any], dict[str, Any], Message]
"""A background push on its way to the loop: route name, parameters, context, envelope."""


class Bridged(Protocol):
    """What the bridge needs of its pusher (``Pusher`` is one)."""

    name: str
    router: Router
    stats: PusherStats
    confirm_mode: ConfirmMode
    max_in_flight: int

    async def push(
        self,
        data: Any,
        route_name: str,
        route_parameters: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> None: ...

    async def send(self, envelope: Message, context: dict[str, Any]) -> None: ...

    async def close(self) -> None: ...

    def forget_connection(self) -> None: ...

    async def report(self, failure: FailedPush, envelope: Message) -> None: ...


class Home(Protocol):
    """Where background pushes run (``SyncBridge``): it binds the loop and counts pushes."""

    pushing: int

    def bind_loop(self) -> None: ...


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class InFlight:
    """Background pushes handed to the home loop and not settled yet; shared by threads.

    ``enter`` is the back-pressure: it blocks the caller while ``size`` are in flight, and
    wakes it once a quarter of the window is free again (waking a blocked caller for every
    confirm would hand the GIL back and forth once a push). ``leave`` settles one (keeping
    its failure); ``take`` hands the failures to ``flush()``.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.count = 0
        self._blocked = 0  # callers waiting in enter()
        self._wake_at = 0  # ... until count is down to this
        self._settled = 0
        self._failures: list[FailedPush] = []
        self._unkept = 0
        self._idle: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def enter(self, size: int, timeout: float | None) -> bool:
        with self._cond:
            if self.count >= size:
                self._wake_at = size - max(1, size // 4)
                self._blocked += 1
                try:
                    if not self._cond.wait_for(lambda: self.count < size, timeout):
                        return False
                finally:
                    self._blocked -= 1
            self.count += 1
            return True

    def leave(self, failure: FailedPush | None) -> None:
        waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        with self._cond:
            self.count -= 1
            self._settled += 1
            if failure is not None:
                if len(self._failures) < MAX_KEPT_FAILURES:
                    self._failures.append(failure)
                else:
                    self._unkept += 1
            if self.count == 0:
                waiters, self._idle = self._idle, []
                self._cond.notify_all()
            elif self._blocked and self.count <= self._wake_at:
                self._cond.notify_all()
        for loop, future in waiters:
            try:
                loop.call_soon_threadsafe(_resolve, future)
            except RuntimeError:  # that flush's loop is gone: nobody waits any more
                pass

    def wait_idle(self, timeout: float | None) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.count == 0, timeout)

    async def idle(self) -> None:
        with self._cond:
            if self.count == 0:
                return
            future = asyncio.get_running_loop().create_future()
            self._idle.append((asyncio.get_running_loop(), future))
        await future

    def take(self) -> tuple[int, list[FailedPush], int]:
        """``(settled, failures, failures not kept)`` since the last call."""
        with self._cond:
            taken = self._settled, self._failures, self._unkept
            self._settled, self._failures, self._unkept = 0, [], 0
            return taken


class BackgroundPushes:
    """One pusher's background pushes: handed off from any thread, run as tasks on its loop."""

    def __init__(self, pusher: Bridged, home: Home) -> None:
        self.pusher = pusher
        self.home = home
        self.in_flight = InFlight()
        self._handoff: deque[Handoff] = deque()
        self._handoff_scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def idle(self) -> bool:
        """True when no push is queued for the loop or running there."""
        return not self._handoff and not self._tasks

    async def cancel(self) -> None:
        """Cancel every background push, those not started yet included (they fail)."""
        self.start_handed_off()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def raise_failures(self) -> None:
        """Raise ``PushFailed`` for the background pushes that failed since the last call."""
        settled, failures, unkept = self.in_flight.take()
        if not failures and not unkept:
            return
        total = len(failures) + unkept
        lines = [f"  {failure}" for failure in failures[:LISTED_FAILURES]]
        if total > len(lines):
            lines.append(f"  ... and {total - len(lines)} more (PushFailed.failures)")
        raise PushFailed(
            f'pusher "{self.pusher.name}": {total} of {settled} background pushes failed:\n'
            + "\n".join(lines),
            transport=self.pusher.name,
            failures=failures,
        ) from failures[0].error if failures else None

    def hand_off(
        self,
        loop: asyncio.AbstractEventLoop,
        handoff: Handoff,
        timeout: float | None,
    ) -> None:
        """Take a place in the window and queue the push for ``loop``; one wake-up serves
        every push queued since."""
        pusher = self.pusher
        route_name = handoff[0]
        if not self.in_flight.enter(pusher.max_in_flight, timeout):
            raise PushFailed(
                f'pusher "{pusher.name}": {pusher.max_in_flight} background pushes '
                f"(max_in_flight) still unconfirmed after {timeout} s; the push was not made",
                transport=pusher.name,
                route_name=route_name,
            )
        self._handoff.append(handoff)
        if self._handoff_scheduled:
            return
        self._handoff_scheduled = True
        try:
            loop.call_soon_threadsafe(self.start_handed_off)
        except RuntimeError:  # the loop closed under us (close_sync in another thread)
            self._handoff_scheduled = False
            self._fail_handed_off()

    def start_handed_off(self) -> None:
        """On the home loop: one task per queued push (their confirms overlap)."""
        self._handoff_scheduled = False  # before draining: a push queued now schedules anew
        handoff, tasks = self._handoff, self._tasks
        while handoff:
            task = asyncio.ensure_future(self._push_in_background(*handoff.popleft()))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    def _fail_handed_off(self) -> None:
        pusher = self.pusher
        while self._handoff:
            route_name, parameters, context, envelope = self._handoff.popleft()
            error = PushFailed("the pusher's event loop is closed", transport=pusher.name)
            pusher.stats.failed += 1
            self.in_flight.leave(
                FailedPush(
                    route_name, envelope.topic, None, error, envelope.data, parameters, context
                )
            )

    async def _push_in_background(
        self,
        route_name: str,
        parameters: dict[str, Any],
        context: dict[str, Any],
        envelope: Message,
    ) -> None:
        pusher, home = self.pusher, self.home
        failure: FailedPush | None = None
        home.pushing += 1
        try:
            home.bind_loop()
            await pusher.send(envelope, context)
            pusher.stats.sent += 1
        except BaseException as exc:
            pusher.stats.failed += 1
            error: BaseException = exc
            if not isinstance(exc, Exception):  # cancelled: close_sync() gave up waiting
                error = PushFailed(
                    "the pusher closed before the transport confirmed the push",
                    transport=pusher.name,
                )
            message_id = exc.message_id if isinstance(exc, PushFailed) else None
            failure = FailedPush(
                route_name, envelope.topic, message_id, error, envelope.data, parameters, context
            )
            await pusher.report(failure, envelope)
            if not isinstance(exc, Exception):
                raise
        finally:
            home.pushing -= 1
            self.in_flight.leave(failure)
