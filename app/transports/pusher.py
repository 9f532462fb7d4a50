"""The async pusher: routing, the envelope, counting and failure events, for every transport.

A transport subclasses ``Pusher`` and implements the ``Sender`` methods (app/transports/
contract.py): ``send(envelope, context)`` and, if it holds a connection, ``disconnect()`` and
``forget_connection()``. ``push()`` routes (``router.generate``), builds the envelope and
counts; ``push_sync``/``flush_sync``/``close_sync`` are the sync facade (app/transports/sync.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Self

from gos_web_socket.app.events import PUSH_FAIL, EventDispatcher, PusherFailEvent
from gos_web_socket.app.exceptions import FailedPush, PusherError
from gos_web_socket.app.logs import RateLimitedLog
from gos_web_socket.app.message import Message
from gos_web_socket.app.stats import PusherStats
from gos_web_socket.app.transports.background import ConfirmMode
from gos_web_socket.app.transports.contract import Sender
from gos_web_socket.app.transports.sync import SyncBridge

if TYPE_CHECKING:
    from gos_web_socket.app.router import Router
    from gos_web_socket.settings.models import TransportSettings

__all__ = ["Pusher"]

logger = logging.getLogger(__name__)


class Pusher(Sender):
    """Base of every pusher: channel generation, the envelope, and the sync facade.

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

    reads_context: ClassVar[bool] = True
    """False for a transport that ignores ``context`` (ZeroMQ, WAMP: as in GOS), so the CLI
    can refuse a ``--context`` that would be dropped."""

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
        self.stats = PusherStats()
        self.bridge = SyncBridge(self)
        """The home loop and the sync facade (app/transports/sync.py)."""
        self._failure_log = RateLimitedLog(logger)

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
        return self.bridge.in_flight.count

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
            InvalidPayload: the data does not fit the route's payload model (a PushFailed).
            InvalidPushArgument: data or context the transport cannot send.
            PushFailed: the transport did not take the push (the cause is chained).
        """
        bridge = self.bridge
        bridge.bind_loop()
        bridge.pushing += 1
        try:
            router = self.router
            channel = router.generate(route_name, route_parameters or {})
            data = router.validate_payload(route_name, data)
            await self.send(Message.create(channel, data), dict(context or {}))
        except Exception:
            self.stats.failed += 1
            raise
        finally:
            bridge.pushing -= 1
        self.stats.sent += 1

    async def drained(self) -> None:
        """Return once no ``push()`` is under way (waiting for its confirm, say) and no
        background push is unconfirmed.

        The lifecycle awaits this, bounded by ``shutdown_timeout``, before ``close()``, so a
        stopping process does not fail pushes that its own code started.
        """
        # Pushes may run on another thread's loop (push_sync), so an asyncio.Event of this
        # loop could not be set by them: poll.
        while self.bridge.busy:  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        """Wait for every background push, release the connection (``disconnect()``), then
        report: safe to call twice; a push afterwards connects again.

        Raises:
            PushFailed: background pushes failed since the last ``flush()`` (``failures``).
        """
        await self.bridge.in_flight.idle()
        await self.disconnect()
        self.bridge.background.raise_failures()

    async def flush(self) -> None:
        """Wait until every background push was confirmed or failed (nothing to wait for in
        ``wait`` mode).

        Raises:
            PushFailed: those that failed since the last ``flush()``, in ``failures``.
        """
        await self.bridge.in_flight.idle()
        self.bridge.background.raise_failures()

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
        routing errors, data that does not fit its payload model and data that is not a
        string, dict or list still raise here; what the transport refuses is reported by
        ``flush()`` / ``close()`` and ``push_fail``.
        While ``max_in_flight`` pushes are unconfirmed it blocks for room, at most
        ``timeout`` seconds (None: until there is room), then raises ``PushFailed``.
        """
        self.bridge.push_sync(data, route_name, route_parameters, context, timeout)

    def flush_sync(self, timeout: float | None = None) -> None:
        """``flush()`` for synchronous code.

        Raises:
            PushFailed: background pushes failed (``failures``), or some were still
                unconfirmed after ``timeout`` seconds (they stay in flight).
        """
        self.bridge.flush_sync(timeout)

    def close_sync(self, timeout: float | None = 10.0) -> None:
        """``close()`` for synchronous code; also stops the private loop thread, if any.

        Background pushes get ``timeout`` seconds to be confirmed; those still in flight are
        then cancelled and reported as failed with the others (``PushFailed``).
        """
        self.bridge.close_sync(timeout)

    async def report(self, failure: FailedPush, envelope: Message) -> None:
        """Log a failed background push (rate-limited) and fire ``push_fail`` for it."""
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

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
