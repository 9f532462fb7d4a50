"""The contract every transport implements: ``Pusher`` (producer side) and ``ServerPushHandler``.

A pusher turns ``push(data, route_name, route_parameters, context)`` into a GOS envelope on its
transport; a server push handler, inside the WebSocket server, turns bodies back into envelopes
and hands them to the topic of the matching route through ``PushableServer.on_push``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Coroutine, Mapping
from typing import TYPE_CHECKING, Any, Protocol, Self, TypeVar

from app.events import (
    PUSH_FAIL,
    PUSH_SUCCESS,
    EventDispatcher,
    PushHandlerFailEvent,
    PushHandlerSuccessEvent,
)
from app.exceptions import PusherError, PushFailed
from app.message import Message
from app.stats import PusherStats, PushHandlerStats

if TYPE_CHECKING:
    from app.router import Router, WampRequest

logger = logging.getLogger(__name__)

T = TypeVar("T")


class PushableServer(Protocol):
    """What a push handler needs from the server: hand a routed push to its topic.

    ``on_push`` raises when the topic cannot take the push (no topic, not pushable, its
    ``on_push`` failed), so transports with acknowledgements can reject the message.
    """

    async def on_push(self, request: WampRequest, data: Any, provider: str) -> None: ...

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


class Pusher(ABC):
    """Base of every pusher: channel generation, the envelope, and the sync bridge.

    A pusher's connection lives on one event loop, the first one ``push()`` ran on.
    ``push_sync()`` runs the push on that loop from any thread; from a process that has no
    loop of its own, the pusher starts a private loop thread the first time.
    """

    name: str = ""
    """The alias under which the pusher is registered (``amqp``, ``zmq``, ``wamp``, ...)."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: _LoopThread | None = None
        self._bridge_lock = threading.Lock()
        self.stats = PusherStats()

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
        try:
            channel = self.router.generate(route_name, route_parameters or {})
            await self._do_push(Message.create(channel, data), dict(context or {}))
        except Exception:
            self.stats.failed += 1
            raise
        self.stats.sent += 1

    @abstractmethod
    async def _do_push(self, message: Message, context: dict[str, Any]) -> None:
        """Deliver one envelope; raise PushFailed (chained) when the transport refuses."""

    async def close(self) -> None:  # noqa: B027 - optional hook, most pushers override it
        """Release the connection; a later push connects again."""

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

    def _run_on_home_loop(self, coro: Coroutine[Any, Any, T], timeout: float | None) -> T:
        with self._bridge_lock:
            loop = self._loop
            if loop is None or loop.is_closed() or not loop.is_running():
                if self._loop_thread is None:
                    self._loop_thread = _LoopThread(f"pusher-{self.name or id(self)}")
                loop = self._loop_thread.loop
        try:
            if asyncio.get_running_loop() is loop:
                coro.close()
                raise PusherError(
                    "a sync call from inside the pusher's own event loop would deadlock; "
                    "await push() instead"
                )
        except RuntimeError:
            pass  # no loop in this thread: the normal case for sync callers
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
        """``push()`` for synchronous code: thread-safe, same arguments and errors."""
        self._run_on_home_loop(self.push(data, route_name, route_parameters, context), timeout)

    def close_sync(self, timeout: float | None = 10.0) -> None:
        """``close()`` for synchronous code; also stops the private loop thread, if any."""
        if self._loop is not None and not self._loop.is_closed():
            self._run_on_home_loop(self.close(), timeout)
        with self._bridge_lock:
            if self._loop_thread is not None:
                self._loop_thread.stop()
                self._loop_thread = None
                self._loop = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class ServerPushHandler(ABC):
    """Base of every push handler: decode, route, hand to the topic, fire the event."""

    name: str = ""
    """The alias under which the handler is registered; also the ``provider`` of pushes."""

    def __init__(self, router: Router, dispatcher: EventDispatcher) -> None:
        self.router = router
        self.dispatcher = dispatcher
        self.stats = PushHandlerStats()

    @abstractmethod
    async def start(self, app: PushableServer) -> None:
        """Start receiving in the background; return once pushes are being consumed."""

    @abstractmethod
    async def close(self) -> None:
        """Stop receiving and release the transport; safe to call twice."""

    @property
    @abstractmethod
    def is_consuming(self) -> bool:
        """True while pushes can arrive (health checks read this)."""

    def _log_failure(self, error: Exception) -> None:
        """One line per failed body; transports that may see floods override this to rate-limit."""
        logger.warning("push handler %s failed: %s", self.name, error, extra={"handler": self.name})

    async def handle_body(self, app: PushableServer, body: bytes | str) -> Message:
        """Deliver one raw body to its topic and fire ``push_success``.

        On any failure ``push_fail`` fires with the raw body and the error, and the error is
        raised again so the transport can reject the message.
        """
        self.stats.received += 1
        started = time.perf_counter()
        raw = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        try:
            message = Message.decode(body)
            request = self.router.match(message.topic)
            await app.on_push(request, message.data, self.name)
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
