"""The sync facade of a pusher: ``push_sync``/``flush_sync``/``close_sync`` for code with no loop.

A pusher's connection lives on one event loop, its home: the first loop ``push()`` ran on,
or a private daemon loop thread that ``SyncBridge`` starts for callers without a loop. The
bridge runs pushes there from any thread, in one of two confirm modes: ``wait`` (return once
the transport took the push) or ``background`` (return once the push is handed to the home
loop, at most ``max_in_flight`` unconfirmed; ``flush()``/``close()`` report the failures).

At interpreter exit (``atexit``) every pusher with a private loop thread is flushed and
closed on that thread, which is still running then, so nothing starts a thread during
shutdown (Python 3.12 forbids it); then the steps transports added with ``after_exit_flush``
run (ZeroMQ terminates its context there). See docs/pushers.md.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import threading
import weakref
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from gos_web_socket.app.exceptions import FailedPush, PusherError, PushFailed
from gos_web_socket.app.message import Message

if TYPE_CHECKING:
    from gos_web_socket.app.router import Router
    from gos_web_socket.app.stats import PusherStats

__all__ = [
    "EXIT_FLUSH_WAIT",
    "LISTED_FAILURES",
    "MAX_KEPT_FAILURES",
    "ConfirmMode",
    "InFlight",
    "LoopThread",
    "SyncBridge",
    "after_exit_flush",
    "flush_at_exit",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

ConfirmMode = Literal["wait", "background"]

MAX_KEPT_FAILURES = 10_000
"""Failed background pushes a pusher keeps for the next ``flush()``; beyond, only a count."""

LISTED_FAILURES = 20
"""Failures spelled out in the ``PushFailed`` message (``failures`` holds them all)."""

EXIT_FLUSH_WAIT = 5.0
"""Seconds the interpreter's exit waits for background pushes nobody flushed."""

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


class LoopThread:
    """A daemon thread running an event loop: the home of a pusher used from sync code."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.loop.close()


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


_bridges: weakref.WeakSet[SyncBridge] = weakref.WeakSet()
"""Bridges with background pushes or a private loop thread: flushed and closed at exit."""

_exit_steps: list[Callable[[], None]] = []


def after_exit_flush(step: Callable[[], None]) -> None:
    """Run ``step`` at interpreter exit, after every pusher was flushed and closed (ZeroMQ
    terminates its context there, once its sockets are closed)."""
    if step not in _exit_steps:
        _exit_steps.append(step)


@atexit.register
def flush_at_exit() -> None:
    """A process that exits without ``flush_sync()``/``close_sync()`` still gets its
    background pushes confirmed (for ``EXIT_FLUSH_WAIT`` s), what failed logged, not silently
    lost, and its pushers' connections closed cleanly on their own (still running) thread."""
    for bridge in list(_bridges):
        bridge.close_at_exit()
    for step in _exit_steps:
        try:
            step()
        except Exception:
            logger.exception("at exit: a transport's exit step failed")


class SyncBridge:
    """One pusher's home loop and its sync facade (``Pusher.push_sync`` and friends)."""

    def __init__(self, pusher: Bridged) -> None:
        self.pusher = pusher
        self.loop: asyncio.AbstractEventLoop | None = None
        self.loop_thread: LoopThread | None = None
        self.in_flight = InFlight()
        self.pushing = 0
        """``push()`` calls and background pushes under way on the home loop."""
        self._lock = threading.Lock()
        self._handoff: deque[Handoff] = deque()
        self._handoff_scheduled = False
        self._background: set[asyncio.Task[None]] = set()

    @property
    def busy(self) -> bool:
        """True while a push is under way or a background push is unconfirmed."""
        return bool(self.pushing or self.in_flight.count)

    def bind_loop(self) -> None:
        """Make the running loop the pusher's home (it forgets connections of a closed one).

        Raises:
            PusherError: the pusher lives on another loop that is still running.
        """
        loop = asyncio.get_running_loop()
        if self.loop is loop:
            return
        if self.loop is not None and not self.loop.is_closed() and self.loop.is_running():
            raise PusherError(
                f'pusher "{self.pusher.name}" is bound to another running event loop; '
                "use push_sync() from other threads"
            )
        self.pusher.forget_connection()
        self.loop = loop

    def home_loop(self) -> asyncio.AbstractEventLoop:
        """The loop pushes run on (a private loop thread if none runs); refuses to be asked
        from that loop itself, where blocking would deadlock."""
        with self._lock:
            loop = self.loop
            if loop is None or loop.is_closed() or not loop.is_running():
                if self.loop_thread is None:
                    self.loop_thread = LoopThread(f"pusher-{self.pusher.name or id(self)}")
                    _bridges.add(self)  # closed at exit if nobody does it
                loop = self.loop_thread.loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            return loop  # no loop in this thread: the normal case for sync callers
        if running is loop:
            raise PusherError(
                "a sync call from inside the pusher's own event loop would deadlock; "
                "await push() instead"
            )
        return loop

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None) -> T:
        """Run ``coro`` on the home loop and wait for it, at most ``timeout`` seconds."""
        try:
            loop = self.home_loop()
        except PusherError:
            coro.close()
            raise
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise PushFailed(
                f'pusher "{self.pusher.name}" did not finish within {timeout} s',
                transport=self.pusher.name,
            ) from None

    def push_sync(
        self,
        data: Any,
        route_name: str,
        route_parameters: Mapping[str, Any] | None,
        context: Mapping[str, Any] | None,
        timeout: float | None,
    ) -> None:
        """See ``Pusher.push_sync``."""
        pusher = self.pusher
        if pusher.confirm_mode == "background":
            self.hand_off(data, route_name, route_parameters, context, timeout)
        else:
            self.run(pusher.push(data, route_name, route_parameters, context), timeout)

    def flush_sync(self, timeout: float | None) -> None:
        """See ``Pusher.flush_sync``."""
        self.refuse_own_loop()
        if not self.in_flight.wait_idle(timeout):
            raise PushFailed(
                f'pusher "{self.pusher.name}": {self.in_flight.count} background pushes still '
                f"unconfirmed after {timeout} s",
                transport=self.pusher.name,
            )
        self.raise_failures()

    def close_sync(self, timeout: float | None) -> None:
        """See ``Pusher.close_sync``."""
        self.refuse_own_loop()
        settled = self.in_flight.wait_idle(timeout)
        try:
            if self.loop_thread is not None or (
                self.loop is not None and not self.loop.is_closed()
            ):
                self.run(self._close_now(cancel=not settled), timeout)
        finally:
            with self._lock:
                if self.loop_thread is not None:
                    self.loop_thread.stop()
                    self.loop_thread = None
                    self.loop = None
        self.raise_failures()  # for a subclass that overrides close() itself

    def close_at_exit(self) -> None:
        """At interpreter exit: flush, and close a pusher that lives on a private loop thread.

        Never starts a thread (3.12 refuses to at exit); failures are logged.
        """
        try:
            if self.loop_thread is not None:
                self.close_sync(timeout=EXIT_FLUSH_WAIT)
            elif self.in_flight.count or self._handoff:
                self.flush_sync(timeout=EXIT_FLUSH_WAIT)
        except PusherError as exc:
            logger.error("at exit: %s", exc)

    async def _close_now(self, cancel: bool) -> None:
        if cancel:
            self._start_handed_off()  # pushes not started yet are cancelled with the others
            tasks = list(self._background)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await self.pusher.close()

    def refuse_own_loop(self) -> None:
        """Raise ``PusherError`` when called on the home loop: blocking there would deadlock."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            return
        if running is self.loop or (
            self.loop_thread is not None and running is self.loop_thread.loop
        ):
            raise PusherError(
                "a sync call from inside the pusher's own event loop would deadlock; "
                "await flush() / close() instead"
            )

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

    # -- background pushes (confirm_mode: background) ----------------------------------------

    def hand_off(
        self,
        data: Any,
        route_name: str,
        route_parameters: Mapping[str, Any] | None,
        context: Mapping[str, Any] | None,
        timeout: float | None,
    ) -> None:
        """Route and build the envelope here (errors raise to the caller), take a place in the
        window, and queue the push for the loop; one wake-up serves every push queued since."""
        pusher = self.pusher
        parameters = dict(route_parameters or {})
        envelope = Message.create(pusher.router.generate(route_name, parameters), data)
        loop = self.home_loop()
        if not self.in_flight.enter(pusher.max_in_flight, timeout):
            raise PushFailed(
                f'pusher "{pusher.name}": {pusher.max_in_flight} background pushes '
                f"(max_in_flight) still unconfirmed after {timeout} s; the push was not made",
                transport=pusher.name,
                route_name=route_name,
            )
        if not self._handoff and not self._background:
            _bridges.add(self)  # flushed at exit if nobody does it
        self._handoff.append((route_name, parameters, dict(context or {}), envelope))
        if self._handoff_scheduled:
            return
        self._handoff_scheduled = True
        try:
            loop.call_soon_threadsafe(self._start_handed_off)
        except RuntimeError:  # the loop closed under us (close_sync in another thread)
            self._handoff_scheduled = False
            self._fail_handed_off()

    def _start_handed_off(self) -> None:
        """On the home loop: one task per queued push (their confirms overlap)."""
        self._handoff_scheduled = False  # before draining: a push queued now schedules anew
        handoff, tasks = self._handoff, self._background
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
        pusher = self.pusher
        failure: FailedPush | None = None
        self.pushing += 1
        try:
            self.bind_loop()
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
            self.pushing -= 1
            self.in_flight.leave(failure)
