"""The sync facade of a pusher: ``push_sync``/``flush_sync``/``close_sync`` for code with no loop.

A pusher's connection lives on one event loop, its home: the first loop ``push()`` ran on,
or a private daemon loop thread that ``SyncBridge`` starts for callers without a loop. The
bridge runs pushes there from any thread, in one of two confirm modes: ``wait`` (return once
the transport took the push) or ``background`` (return once the push is handed to the home
loop: app/transports/background.py keeps that window and its failures).

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
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

from gos_web_socket.app.exceptions import PusherError, PushFailed
from gos_web_socket.app.message import Message
from gos_web_socket.app.transports.background import BackgroundPushes, Bridged, InFlight

__all__ = [
    "EXIT_FLUSH_WAIT",
    "LoopThread",
    "SyncBridge",
    "after_exit_flush",
    "flush_at_exit",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

EXIT_FLUSH_WAIT = 5.0
"""Seconds the interpreter's exit waits for background pushes nobody flushed."""


class LoopThread:
    """A daemon thread running an event loop: the home of a pusher used from sync code."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    @property
    def running(self) -> bool:
        """False in a forked child: the thread exists only in the process that started it."""
        return self._thread.is_alive()

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.loop.close()


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
        self.pushing = 0
        """``push()`` calls and background pushes under way on the home loop."""
        self.background = BackgroundPushes(pusher, self)
        """The window of background pushes (app/transports/background.py)."""
        self._lock = threading.Lock()

    @property
    def in_flight(self) -> InFlight:
        """Background pushes handed over and not settled yet."""
        return self.background.in_flight

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
            # Route and build the envelope here: those errors raise to the caller.
            parameters = dict(route_parameters or {})
            router = pusher.router
            channel = router.generate(route_name, parameters)
            envelope = Message.create(channel, router.validate_payload(route_name, data))
            loop = self.home_loop()
            if self.background.idle:
                _bridges.add(self)  # flushed at exit if nobody does it
            handoff = (route_name, parameters, dict(context or {}), envelope)
            self.background.hand_off(loop, handoff, timeout)
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
        self.background.raise_failures()

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
        self.background.raise_failures()  # for a subclass that overrides close() itself

    def close_at_exit(self) -> None:
        """At interpreter exit: flush, and close a pusher that lives on a private loop thread.

        Never starts a thread (3.12 refuses to at exit); failures are logged.
        """
        thread = self.loop_thread
        if thread is not None and not thread.running:
            return  # a forked child's copy: that thread, and the pusher's pushes, are the parent's
        try:
            if thread is not None:
                self.close_sync(timeout=EXIT_FLUSH_WAIT)
            elif self.in_flight.count or not self.background.idle:
                self.flush_sync(timeout=EXIT_FLUSH_WAIT)
        except PusherError as exc:
            logger.error("at exit: %s", exc)

    async def _close_now(self, cancel: bool) -> None:
        if cancel:
            await self.background.cancel()
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
