"""The transport contract: a sender (``Pusher.send``) and a receiver (``Receiver``/``Delivery``).

A transport implements two small things, and everything else lives here, once:

- **Sender**: subclass ``Pusher``, set ``name``, implement ``send(envelope, context)`` (hand one
  envelope to the transport, raise ``PushFailed`` if it did not take it) and, if it holds a
  connection, ``disconnect()``. ``Pusher.push`` does the routing (``router.generate``), builds
  the envelope, counts, and offers the sync bridge (``push_sync``/``flush_sync``/``close_sync``)
  with its two confirm modes: ``wait`` and ``background`` (``flush()``/``close()`` report).
- **Receiver**: subclass ``Receiver`` (``open``, ``receive``, ``cancel``, ``close``, ``is_open``)
  whose ``receive()`` returns ``Delivery`` objects (body, message id, ``ack``, ``reject``). Wrap
  it in a ``ServerPushHandler``: that decodes the envelope, routes it (``router.match``), hands
  it to the topic (``PushableServer.on_push``), fires ``push_success``/``push_fail``, drops
  duplicate message ids, keeps delivery order, and acks only after the server wrote the frames
  (``PushableServer.flushed``). ``Supervisor`` restarts a handler whose start or receive failed.

See docs/transports.md for the guarantees and a worked example ("Write your own transport").
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections import OrderedDict, deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, Self, TypeVar

from gos_web_socket.app.events import (
    PUSH_FAIL,
    PUSH_SUCCESS,
    EventDispatcher,
    PusherFailEvent,
    PushHandlerFailEvent,
    PushHandlerSuccessEvent,
)
from gos_web_socket.app.exceptions import (
    FailedPush,
    MessageDecodeError,
    PusherError,
    PushFailed,
    PushHandlerError,
    RoutingError,
)
from gos_web_socket.app.history import LOCAL, Position, ReadBack
from gos_web_socket.app.message import Message
from gos_web_socket.app.push import Capture, Push
from gos_web_socket.app.stats import PusherStats, PushHandlerStats

if TYPE_CHECKING:
    from gos_web_socket.app.router import Router
    from gos_web_socket.settings.models import TransportSettings

logger = logging.getLogger(__name__)

T = TypeVar("T")


class PushableServer(Protocol):
    """What a push handler needs from the server: hand a routed push to its topic.

    ``on_push`` raises when the topic cannot take the push (no topic, not pushable, its
    ``on_push`` failed), so transports with acknowledgements can reject the message. The
    ``Push`` (app/push.py) says everything about it: channel, data, provider, position, mode.
    """

    async def on_push(self, push: Push) -> None: ...

    async def flushed(self) -> None:
        """Return once every frame queued so far was handed to its client's transport.

        A transport with acknowledgements awaits this before it acks: ``on_push`` only queues
        the frames, which leave at the end of the loop turn.
        """
        ...


class SupportsPush(Protocol):
    """All that backend code needs of a pusher."""

    async def push(
        self,
        data: Any,
        route_name: str,
        route_parameters: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> None: ...


class _LoopThread:
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


ConfirmMode = Literal["wait", "background"]

MAX_KEPT_FAILURES = 10_000
"""Failed background pushes a pusher keeps for the next ``flush()``; beyond, only a count."""

LISTED_FAILURES = 20
"""Failures spelled out in the ``PushFailed`` message (``failures`` holds them all)."""

EXIT_FLUSH_WAIT = 5.0
"""Seconds the interpreter's exit waits for background pushes nobody flushed."""


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _InFlight:
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


_background_pushers: weakref.WeakSet[Pusher] = weakref.WeakSet()


@atexit.register
def _flush_background_at_exit() -> None:
    """A process that exits without ``flush_sync()`` still gets its background pushes
    confirmed (for ``EXIT_FLUSH_WAIT`` s), and what failed is logged, not silently lost."""
    for pusher in list(_background_pushers):
        try:
            pusher.flush_sync(timeout=EXIT_FLUSH_WAIT)
        except PusherError as exc:
            logger.error("at exit: %s", exc)


class Pusher(ABC):
    """Base of every pusher: channel generation, the envelope, and the sync bridge.

    A pusher's connection lives on one event loop, the first one ``push()`` ran on.
    ``push_sync()`` runs the push on that loop from any thread; from a process that has no
    loop of its own, the pusher starts a private loop thread the first time.

    ``confirm_mode`` (from the pusher's settings node) says what ``push_sync()`` waits for:
    ``wait`` (the default) returns once the transport took the push, as ``push()`` does;
    ``background`` returns once the push is handed to the pusher's loop, at most
    ``max_in_flight`` being unconfirmed at a time. ``flush()`` / ``close()`` then wait for
    every one and raise ``PushFailed`` listing those that failed, and each failure also fires
    ``push_fail`` (a ``PusherFailEvent``) on ``dispatcher``. See docs/pushers.md.
    """

    name: str = ""
    """The alias under which the pusher is registered (``amqp``, ``zmq``, ``wamp``, ...)."""

    def __init__(
        self,
        router: Router,
        *,
        settings: TransportSettings | None = None,
        dispatcher: EventDispatcher | Callable[[], EventDispatcher] | None = None,
    ) -> None:
        self.router = router
        self._dispatcher = dispatcher
        self.confirm_mode: ConfirmMode = settings.confirm_mode if settings else "wait"
        self.max_in_flight: int = settings.max_in_flight if settings else 1000
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: _LoopThread | None = None
        self._bridge_lock = threading.Lock()
        self._pushing = 0
        self._in_flight = _InFlight()
        self._handoff: deque[_Handoff] = deque()
        self._handoff_scheduled = False
        self._background: set[asyncio.Task[None]] = set()
        self._failure_log = RateLimitedLog(logger)
        self.stats = PusherStats()

    @property
    def dispatcher(self) -> EventDispatcher | None:
        """Where failed background pushes fire ``push_fail``; None: they are only logged.

        Given as a callable (the container's provider), it is called on first use: the
        dispatcher's listeners may depend on the pushers.
        """
        if self._dispatcher is not None and not isinstance(self._dispatcher, EventDispatcher):
            self._dispatcher = self._dispatcher()
        return self._dispatcher

    @dispatcher.setter
    def dispatcher(self, dispatcher: EventDispatcher | None) -> None:
        self._dispatcher = dispatcher

    @property
    def in_flight(self) -> int:
        """Background pushes handed over and not yet confirmed or failed."""
        return self._in_flight.count

    async def push(
        self,
        data: Any,
        route_name: str,
        route_parameters: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        """Send ``data`` to the channel of ``route_name``; returns once the transport took it.

        Raises:
            RoutingError: the route is unknown or the parameters do not fit it.
            InvalidPushArgument: data or context the transport cannot send.
            PushFailed: the transport did not take the push (the cause is chained).
        """
        self._bind_loop()
        self._pushing += 1
        try:
            channel = self.router.generate(route_name, route_parameters or {})
            await self.send(Message.create(channel, data), dict(context or {}))
        except Exception:
            self.stats.failed += 1
            raise
        finally:
            self._pushing -= 1
        self.stats.sent += 1

    async def drained(self) -> None:
        """Return once no ``push()`` is under way (waiting for its confirm, say) and no
        background push is unconfirmed.

        The lifecycle awaits this, bounded by ``shutdown_timeout``, before ``close()``, so a
        stopping process does not fail pushes that its own code started.
        """
        # Pushes may run on another thread's loop (push_sync), so an asyncio.Event of this
        # loop could not be set by them: poll.
        while self._pushing or self._in_flight.count:  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    @abstractmethod
    async def send(self, envelope: Message, context: dict[str, Any]) -> None:
        """The sender contract: hand one envelope to the transport, return once it took it.

        ``envelope.encode()`` is the GOS wire body ``{"topic": ..., "data": ...}`` (JSON bytes);
        ``envelope.topic`` is the channel the router generated. ``context`` is the caller's
        transport options, as given to ``push()``: refuse keys you do not know. Many sends
        may be under way at once (background pushes, concurrent ``push()`` calls).

        Raises:
            InvalidPushArgument: data or context this transport cannot send.
            PushFailed: the transport did not take it; chain the native error (``from exc``),
                and pass the transport's ``message_id`` when it has one.
        """

    async def disconnect(self) -> None:  # noqa: B027 - optional hook, most pushers override it
        """Release the connection; safe to call twice (the transport's hook, used by ``close()``
        and by ``send()`` itself to drop a broken connection: it waits for nothing).

        A pusher is reusable: a push after it connects again (it is not an error).
        """

    async def close(self) -> None:
        """Wait for every background push, release the connection (``disconnect()``), then
        report: safe to call twice; a push afterwards connects again.

        Raises:
            PushFailed: background pushes failed since the last ``flush()`` (``failures``).
        """
        await self._in_flight.idle()
        await self.disconnect()
        self._raise_failures()

    async def flush(self) -> None:
        """Wait until every background push was confirmed or failed (nothing to wait for in
        ``wait`` mode).

        Raises:
            PushFailed: those that failed since the last ``flush()``, in ``failures``.
        """
        await self._in_flight.idle()
        self._raise_failures()

    def _forget_connection(self) -> None:  # noqa: B027 - optional hook
        """Drop connection objects bound to a loop that is gone (no I/O: the loop is closed)."""

    def _bind_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        if self._loop is not None and not self._loop.is_closed() and self._loop.is_running():
            raise PusherError(
                f'pusher "{self.name}" is bound to another running event loop; '
                "use push_sync() from other threads"
            )
        self._forget_connection()
        self._loop = loop

    def _home_loop(self) -> asyncio.AbstractEventLoop:
        """The loop pushes run on (a private loop thread if none runs); refuses to be asked
        from that loop itself, where blocking would deadlock."""
        with self._bridge_lock:
            loop = self._loop
            if loop is None or loop.is_closed() or not loop.is_running():
                if self._loop_thread is None:
                    self._loop_thread = _LoopThread(f"pusher-{self.name or id(self)}")
                loop = self._loop_thread.loop
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

    def _run_on_home_loop(self, coro: Coroutine[Any, Any, T], timeout: float | None) -> T:
        try:
            loop = self._home_loop()
        except PusherError:
            coro.close()
            raise
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise PushFailed(
                f'pusher "{self.name}" did not finish within {timeout} s', transport=self.name
            ) from None

    def push_sync(
        self,
        data: Any,
        route_name: str,
        route_parameters: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> None:
        """``push()`` for synchronous code: thread-safe, same arguments and errors.

        In ``background`` mode it returns once the push is handed to the pusher's loop:
        routing errors and data that is not a string, dict or list still raise here; what
        the transport refuses is reported by ``flush()`` / ``close()`` and ``push_fail``.
        While ``max_in_flight`` pushes are unconfirmed it blocks for room, at most
        ``timeout`` seconds (None: until there is room), then raises ``PushFailed``.
        """
        if self.confirm_mode == "background":
            self._hand_off(data, route_name, route_parameters, context, timeout)
        else:
            self._run_on_home_loop(self.push(data, route_name, route_parameters, context), timeout)

    def flush_sync(self, timeout: float | None = None) -> None:
        """``flush()`` for synchronous code.

        Raises:
            PushFailed: background pushes failed (``failures``), or some were still
                unconfirmed after ``timeout`` seconds (they stay in flight).
        """
        self._refuse_own_loop()
        if not self._in_flight.wait_idle(timeout):
            raise PushFailed(
                f'pusher "{self.name}": {self._in_flight.count} background pushes still '
                f"unconfirmed after {timeout} s",
                transport=self.name,
            )
        self._raise_failures()

    def close_sync(self, timeout: float | None = 10.0) -> None:
        """``close()`` for synchronous code; also stops the private loop thread, if any.

        Background pushes get ``timeout`` seconds to be confirmed; those still in flight are
        then cancelled and reported as failed with the others (``PushFailed``).
        """
        self._refuse_own_loop()
        settled = self._in_flight.wait_idle(timeout)
        try:
            if self._loop_thread is not None or (
                self._loop is not None and not self._loop.is_closed()
            ):
                self._run_on_home_loop(self._close_now(cancel=not settled), timeout)
        finally:
            with self._bridge_lock:
                if self._loop_thread is not None:
                    self._loop_thread.stop()
                    self._loop_thread = None
                    self._loop = None
        self._raise_failures()  # for a subclass that overrides close() itself

    async def _close_now(self, cancel: bool) -> None:
        if cancel:
            self._start_handed_off()  # pushes not started yet are cancelled with the others
            tasks = list(self._background)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await self.close()

    def _refuse_own_loop(self) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            return
        if running is self._loop or (
            self._loop_thread is not None and running is self._loop_thread.loop
        ):
            raise PusherError(
                "a sync call from inside the pusher's own event loop would deadlock; "
                "await flush() / close() instead"
            )

    # -- background pushes (confirm_mode: background) ----------------------------------------

    def _hand_off(
        self,
        data: Any,
        route_name: str,
        route_parameters: Mapping[str, Any] | None,
        context: Mapping[str, Any] | None,
        timeout: float | None,
    ) -> None:
        """Route and build the envelope here (errors raise to the caller), take a place in the
        window, and queue the push for the loop; one wake-up serves every push queued since."""
        parameters = dict(route_parameters or {})
        envelope = Message.create(self.router.generate(route_name, parameters), data)
        loop = self._home_loop()
        if not self._in_flight.enter(self.max_in_flight, timeout):
            raise PushFailed(
                f'pusher "{self.name}": {self.max_in_flight} background pushes (max_in_flight) '
                f"still unconfirmed after {timeout} s; the push was not made",
                transport=self.name,
                route_name=route_name,
            )
        if not self._handoff and not self._background:
            _background_pushers.add(self)  # flushed at exit if nobody does it
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
        while self._handoff:
            route_name, parameters, context, envelope = self._handoff.popleft()
            error = PushFailed("the pusher's event loop is closed", transport=self.name)
            self.stats.failed += 1
            self._in_flight.leave(
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
        failure: FailedPush | None = None
        self._pushing += 1
        try:
            self._bind_loop()
            await self.send(envelope, context)
            self.stats.sent += 1
        except BaseException as exc:
            self.stats.failed += 1
            error: BaseException = exc
            if not isinstance(exc, Exception):  # cancelled: close_sync() gave up waiting
                error = PushFailed(
                    "the pusher closed before the transport confirmed the push",
                    transport=self.name,
                )
            message_id = exc.message_id if isinstance(exc, PushFailed) else None
            failure = FailedPush(
                route_name, envelope.topic, message_id, error, envelope.data, parameters, context
            )
            await self._report(failure, envelope)
            if not isinstance(exc, Exception):
                raise
        finally:
            self._pushing -= 1
            self._in_flight.leave(failure)

    async def _report(self, failure: FailedPush, envelope: Message) -> None:
        self._failure_log.warning(
            'pusher "%s": a background push failed: %s', self.name, failure, pusher=self.name
        )
        if self.dispatcher is None:
            return
        try:
            raw = envelope.encode().decode()
        except PusherError:  # what failed was encoding it
            raw = repr(envelope.data)
        await self.dispatcher.dispatch(
            PUSH_FAIL, PusherFailEvent(message=raw, pusher=self, failure=failure)
        )

    def _raise_failures(self) -> None:
        settled, failures, unkept = self._in_flight.take()
        if not failures and not unkept:
            return
        total = len(failures) + unkept
        lines = [f"  {failure}" for failure in failures[:LISTED_FAILURES]]
        if total > len(lines):
            lines.append(f"  ... and {total - len(lines)} more (PushFailed.failures)")
        raise PushFailed(
            f'pusher "{self.name}": {total} of {settled} background pushes failed:\n'
            + "\n".join(lines),
            transport=self.name,
            failures=failures,
        ) from failures[0].error if failures else None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


_Handoff = tuple[str, dict[str, Any], dict[str, Any], Message]
"""A background push on its way to the loop: route name, parameters, context, envelope."""


# -- the receiver contract ------------------------------------------------------------------


class Delivery:
    """One body taken from a transport, settled exactly once by the handler.

    The base class is the at-most-once case: ``ack`` and ``reject`` do nothing. A transport
    with acknowledgements subclasses it and overrides both. Neither may raise for a transport
    that went away meanwhile (log it; the redelivery is dropped by message id).

    Attributes:
        body: the raw bytes, a GOS envelope ``{"topic": ..., "data": ...}`` if all is well.
        message_id: the sender's id when the transport carries one; repeats are dropped.
        position: the push's position in a log every node reads (app/history.py), if any.
    """

    __slots__ = ("body", "message_id", "position", "refill")

    def __init__(
        self, body: bytes, message_id: str | None = None, position: Position | None = None
    ) -> None:
        self.body = body
        self.message_id = message_id
        self.position = position
        """Where the push is in the transport's log (a stream); None: this process numbers it."""
        self.refill = False
        """True for a push handled before the node restarted, read back from the log to fill
        channel history: ``on_push`` runs, its broadcasts are recorded and sent only to clients
        that recovered on this node (they follow positions), no event fires, nothing is counted."""

    async def ack(self, multiple: bool = False) -> None:
        """The push reached its topic and the frames were written: forget it.

        ``multiple=True`` (only used when the receiver's ``acks_multiple`` is true) also acks
        every earlier unsettled delivery of the same receiver.
        """

    async def reject(self, error: Exception) -> None:
        """The push cannot be delivered (``str(error)`` is the reason): dead-letter or drop it,
        never redeliver it as is."""


class Receiver(ABC):
    """The receiving half of a transport: what a stranger writes to add a push handler.

    The handler calls ``open()``, then ``receive()`` in a loop from one task, and on shutdown
    ``cancel()`` then ``close()``. After a failure it calls ``close()`` and, later, ``open()``
    again: a receiver must be reusable.
    """

    acknowledges: ClassVar[bool] = False
    """True when ``ack()`` tells the transport a push is done (at-least-once). The handler then
    acks only after ``PushableServer.flushed()``; at-most-once transports skip that wait."""

    acks_multiple: ClassVar[bool] = False
    """True when ``ack(multiple=True)`` settles all earlier deliveries (AMQP): one ack a batch."""

    @abstractmethod
    async def open(self) -> None:
        """Connect or bind and start receiving.

        Raises:
            PushHandlerError: the transport is not reachable (the supervisor retries later).
            ListenError, ConfigurationError: retrying cannot help (an address that cannot be
                bound, bad settings): on the first attempt, the server's start-up stops.
        """

    @abstractmethod
    async def receive(self) -> Sequence[Delivery]:
        """Wait for at least one delivery; return every one that is ready, in order.

        Returns an empty sequence once ``cancel()`` or ``close()`` was called.

        Raises:
            PushHandlerError: the transport failed (connection lost, socket error); the
                supervisor closes and reopens the receiver.
        """

    async def cancel(self) -> None:  # noqa: B027 - optional: most receivers stop in close()
        """Stop taking new deliveries; ``receive()`` returns those already taken, then ``[]``."""

    @abstractmethod
    async def close(self) -> None:
        """Release the transport; deliveries not yet settled go back to it. Safe to call twice."""

    @property
    @abstractmethod
    def is_open(self) -> bool:
        """True while deliveries can arrive."""


class LogReceiver(Receiver):
    """A receiver of a log that every node reads from its own position (a RabbitMQ stream):
    its deliveries carry positions, and it can read the log again for recoveries."""

    opened_at: Position | None = None
    """After ``open()``: the position after which it delivers every push, in order (None
    while the log's epoch is unknown)."""

    @abstractmethod
    async def read_back(self, first: int, last: int) -> Sequence[Delivery]:
        """The pushes the log still holds at offsets ``first``..``last``, in order, each with
        its ``position``; they need no settling."""


class RateLimitedLog:
    """At most one warning per ``interval`` seconds, saying how many it held back."""

    def __init__(self, log: logging.Logger, interval: float = 10.0) -> None:
        self.log = log
        self.interval = interval
        self._next = 0.0
        self._held = 0

    def warning(self, message: str, *args: object, **extra: Any) -> None:
        now = time.monotonic()
        if now < self._next:
            self._held += 1
            return
        if self._held:
            message += f" ({self._held} more since the last report)"
        self.log.warning(message, *args, extra=extra or None, stacklevel=2)
        self._held = 0
        self._next = now + self.interval


# -- the push handler: everything a transport shares ----------------------------------------


class ServerPushHandler:
    """Runs one ``Receiver``: decode, route, hand to the topic, fire the event, settle.

    Pushes reach topics one by one in delivery order. A delivery whose ``message_id`` was seen
    in the last ``dedup_window`` deliveries is settled like the first one was and not handed to
    the topic again. With an acknowledging receiver, the deliveries of a batch are acked after
    one ``await app.flushed()``; a reject first settles the acks before it (delivery order).
    """

    name: str = ""
    """The alias under which the handler is registered; also the ``provider`` of pushes."""

    drain_timeout = 5.0
    """Seconds ``close()`` lets the handler finish deliveries it already took."""

    def __init__(
        self,
        router: Router,
        dispatcher: EventDispatcher,
        receiver: Receiver,
        *,
        dedup_window: int = 10_000,
    ) -> None:
        self.router = router
        self.dispatcher = dispatcher
        self.receiver = receiver
        self.dedup_window = dedup_window
        self.stats = PushHandlerStats()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._seen: OrderedDict[str, bool] = OrderedDict()  # message_id -> delivered
        self._failures = RateLimitedLog(logger)

    @property
    def is_consuming(self) -> bool:
        """True while pushes can arrive (health checks read this)."""
        return self._task is not None and not self._task.done() and self.receiver.is_open

    async def start(self, app: PushableServer) -> None:
        """Open the receiver and receive in the background; return once it consumes.

        Raises:
            PushHandlerError: the transport is not reachable (the receiver is closed again).
        """
        if self._task is not None and not self._task.done():
            return
        self._closing = False
        try:
            await self.receiver.open()
        except BaseException:
            await self.receiver.close()
            raise
        self._task = asyncio.create_task(self._run(app), name=f"push-handler-{self.name}")

    async def stopped(self) -> BaseException | None:
        """Wait until the receive loop ends; return what ended it (``None``: ``close()``)."""
        task = self._task
        if task is None:
            return None
        await asyncio.wait({task})
        if task.cancelled():
            return None if self._closing else asyncio.CancelledError()
        return task.exception()

    async def close(self) -> None:
        """Stop receiving, finish deliveries already taken (``drain_timeout``), release.

        Safe to call twice; ``start()`` works again afterwards.
        """
        self._closing = True
        task, self._task = self._task, None
        if task is not None and not task.done():
            try:
                await asyncio.wait_for(self.receiver.cancel(), self.drain_timeout)
            except Exception as exc:
                logger.debug("push handler %s: cancel failed: %r", self.name, exc)
            await asyncio.wait({task}, timeout=self.drain_timeout)
            if not task.done():
                task.cancel()
                await asyncio.wait({task})
        await self.receiver.close()

    async def _run(self, app: PushableServer) -> None:
        receiver = self.receiver
        while True:
            batch = await receiver.receive()
            if not batch:
                if self._closing:
                    return
                raise PushHandlerError(f"push handler {self.name}: the receiver stopped")
            await self._settle_batch(app, batch)

    async def _settle_batch(self, app: PushableServer, batch: Sequence[Delivery]) -> None:
        handled: list[Delivery] = []
        for delivery in batch:
            error = await self._deliver(app, delivery)
            if error is None:
                handled.append(delivery)
                continue
            await self._ack(app, handled)  # acks ahead of the reject: delivery order
            handled = []
            await delivery.reject(error)
        await self._ack(app, handled)

    async def _ack(self, app: PushableServer, handled: list[Delivery]) -> None:
        if not handled:
            return
        if self.receiver.acknowledges:
            await app.flushed()  # on_push only queued the frames; ack once they are written
        if self.receiver.acks_multiple:
            await handled[-1].ack(multiple=True)
        else:
            for delivery in handled:
                await delivery.ack()

    async def _deliver(self, app: PushableServer, delivery: Delivery) -> Exception | None:
        """Hand one delivery to its topic; return the error that should reject it, if any."""
        message_id = delivery.message_id
        if delivery.refill:  # settled before the restart, whatever happens now
            if message_id is None or message_id not in self._seen:
                await self._refill(app, delivery)
            return None
        if message_id is not None and message_id in self._seen:
            self.stats.received += 1
            self.stats.deduplicated += 1
            if self._seen[message_id]:
                return None  # a redelivered duplicate: the topic had it already
            return PushHandlerError(f"message {message_id} failed before; rejecting it again")
        try:
            await self.handle_body(app, delivery.body, delivery.position or LOCAL.next())
        except Exception as exc:  # handle_body fired push_fail already
            self._remember(message_id, False)
            return exc
        self._remember(message_id, True)
        return None

    async def _refill(self, app: PushableServer, delivery: Delivery) -> None:
        """Run a push read back from the log so that its broadcasts fill channel history."""
        try:
            message = Message.decode(delivery.body)
            request = self.router.match(message.topic)
            await app.on_push(Push.refill(request, message.data, self.name, delivery.position))
        except Exception as exc:  # it failed the first time too; it was settled then
            logger.debug("push handler %s: refill of a push failed: %r", self.name, exc)
        self._remember(delivery.message_id, True)

    async def read_back(
        self, app: PushableServer, first: int, last: int, channels: frozenset[str]
    ) -> ReadBack:
        """Run the log's pushes at ``first``..``last`` to ``channels`` again, for recoveries
        older than those channels' history (``Backfill``): what their topics broadcast is
        captured; nothing is sent, recorded, counted or fired."""
        receiver = self.receiver
        if not isinstance(receiver, LogReceiver):
            raise TypeError(f"push handler {self.name} reads no log ({type(receiver).__name__})")
        deliveries = await receiver.read_back(first, last)
        capture = Capture(channels)
        epoch, start, end = None, None, None
        for delivery in deliveries:
            position = delivery.position
            if position is None or (end is not None and position.offset != end + 1):
                break  # a hole: what follows it does not count as read
            epoch, end = position.epoch, position.offset
            start = position.offset if start is None else start
            try:
                message = Message.decode(delivery.body)
                request = self.router.match(message.topic)
            except (MessageDecodeError, RoutingError):  # poison: dead-lettered when it came
                continue
            if request.matched not in channels:
                continue
            push = Push.read_back(request, message.data, self.name, position, capture)
            try:
                await app.on_push(push)
            except Exception as exc:  # it failed the first time too; it was settled then
                logger.debug("push handler %s: read-back push failed: %r", self.name, exc)
        return ReadBack(epoch, capture.publications, start, end)

    def _remember(self, message_id: str | None, delivered: bool) -> None:
        if message_id is None or not self.dedup_window:
            return
        self._seen[message_id] = delivered
        if len(self._seen) > self.dedup_window:
            self._seen.popitem(last=False)

    def _log_failure(self, error: Exception) -> None:
        """Failed bodies may come in floods: one warning per interval, with the count held."""
        self._failures.warning(
            "push handler %s could not deliver a body: %s", self.name, error, handler=self.name
        )

    async def handle_body(
        self, app: PushableServer, body: bytes | str, position: Position | None = None
    ) -> Message:
        """Deliver one raw body to its topic as a live push at ``position`` (None: its
        broadcasts are not recorded) and fire ``push_success``.

        On any failure ``push_fail`` fires with the raw body and the error, and the error is
        raised again so the transport can reject the message.
        """
        self.stats.received += 1
        started = time.perf_counter()
        raw = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        try:
            message = Message.decode(body)
            request = self.router.match(message.topic)
            await app.on_push(Push(request, message.data, self.name, position))
            self.stats.latency.observe(time.perf_counter() - started)
        except Exception as exc:
            self._log_failure(exc)
            await self.dispatcher.dispatch(
                PUSH_FAIL, PushHandlerFailEvent(message=raw, push_handler=self, error=exc)
            )
            raise
        await self.dispatcher.dispatch(
            PUSH_SUCCESS, PushHandlerSuccessEvent(message=raw, push_handler=self)
        )
        return message
