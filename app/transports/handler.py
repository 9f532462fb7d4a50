"""The server push handler: everything a receiving transport shares.

``ServerPushHandler`` runs one ``Receiver`` (app/transports/contract.py): it decodes the
envelope, routes it (``router.match``), hands it to the topic (``PushableServer.on_push``),
fires ``push_success``/``push_fail``, drops duplicate message ids, keeps delivery order, and
acks only after the server wrote the frames (``PushableServer.flushed``); the last three are
its ``Settler``'s (app/transports/settle.py). ``Supervisor``
(app/transports/supervisor.py) restarts a handler whose start or receive failed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from functools import partial
from typing import TYPE_CHECKING, Any

from gos_web_socket.app.events import (
    PUSH_FAIL,
    PUSH_SUCCESS,
    EventDispatcher,
    PushHandlerFailEvent,
    PushHandlerSuccessEvent,
)
from gos_web_socket.app.exceptions import (
    PushHandlerError,
)
from gos_web_socket.app.logs import RateLimitedLog
from gos_web_socket.app.message import Message
from gos_web_socket.app.position import LOCAL, Position
from gos_web_socket.app.push import Push
from gos_web_socket.app.stats import PushHandlerStats
from gos_web_socket.app.transports.canary import Canary, is_marker
from gos_web_socket.app.transports.contract import Delivery, PushableServer, Receiver
from gos_web_socket.app.transports.settle import Settler

if TYPE_CHECKING:
    from gos_web_socket.app.router import Router, WampRequest

__all__ = ["ServerPushHandler"]

logger = logging.getLogger(__name__)


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
        self.settler = Settler(receiver, self.stats, dedup_window)
        """Dedup and acks (app/transports/settle.py)."""
        self._failures = RateLimitedLog(logger)
        self.canary: Canary | None = None
        """Set by a transport whose receiver can send itself markers (app/transports/canary.py)."""
        self._deaf_error: PushHandlerError | None = None

    @property
    def deaf(self) -> bool:
        """True while the canary's last marker did not come back (health checks read this)."""
        return self.canary is not None and self.canary.deaf

    def deafened(self, error: PushHandlerError) -> None:
        """The canary's verdict: stop the receive loop with ``error`` (the supervisor restarts)."""
        self._deaf_error = error
        if self._task is not None and not self._task.done():
            self._task.cancel()

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
        self._deaf_error = None
        self._task = asyncio.create_task(self._run(app), name=f"push-handler-{self.name}")
        if self.canary is not None:
            self.canary.start()

    async def stopped(self) -> BaseException | None:
        """Wait until the receive loop ends; return what ended it (``None``: ``close()``)."""
        task = self._task
        if task is None:
            return None
        await asyncio.wait({task})
        if task.cancelled():
            if self._closing:
                return None
            return self._deaf_error or asyncio.CancelledError()
        return task.exception()

    async def close(self) -> None:
        """Stop receiving, finish deliveries already taken (``drain_timeout``), release.

        Safe to call twice; ``start()`` works again afterwards.
        """
        self._closing = True
        if self.canary is not None:
            await self.canary.stop()
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
        deliver = partial(self._deliver, app)
        while True:
            batch = await receiver.receive()
            if not batch:
                if self._closing:
                    return
                raise PushHandlerError(f"push handler {self.name}: the receiver stopped")
            canary = self.canary
            if canary is None:
                await self.settler.settle_batch(app, batch, deliver)
                continue
            canary.settling(True)
            try:
                await self.settler.settle_batch(app, batch, deliver)
            finally:
                canary.settling(False)

    async def _deliver(self, app: PushableServer, delivery: Delivery) -> Exception | None:
        """Hand one delivery to its topic; return the error that should reject it, if any."""
        message_id = delivery.message_id
        if self.canary is not None and self.canary.take(delivery.body):
            return None  # a marker: never a push, whoever sent it
        if is_marker(delivery.body):
            return None  # another node's marker reaches a handler whose canary is off
        if delivery.refill:  # settled before the restart, whatever happens now
            if message_id is None or self.settler.seen.outcome(message_id) is None:
                await self._refill(app, delivery)
            return None
        return await self.settler.once(
            message_id,
            lambda: self.handle_body(app, delivery.body, delivery.position or LOCAL.next()),
        )

    async def _refill(self, app: PushableServer, delivery: Delivery) -> None:
        """Run a push read back from the log so that its broadcasts fill channel history."""
        try:
            request, data = self.route(Message.decode(delivery.body))
            await app.on_push(Push.refill(request, data, self.name, delivery.position))
        except Exception as exc:  # it failed the first time too; it was settled then
            logger.debug("push handler %s: refill of a push failed: %r", self.name, exc)
        self.settler.seen.settled(delivery.message_id, True)

    def route(self, message: Message) -> tuple[WampRequest, Any]:
        """The route of ``message``'s channel and its data, checked against the route's
        payload model when it names one (app/router/payload.py).

        Raises:
            NoRouteMatch: no route matches the channel.
            InvalidPayload: the data does not fit the route's model: the push reaches no topic.
        """
        request = self.router.match(message.topic)
        return request, request.route.validate_payload(message.data, request.route_name)

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
            request, data = self.route(message)
            await app.on_push(Push(request, data, self.name, position))
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
