"""In-memory pusher and push handler: test doubles, and the smallest model of a transport."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from gos_web_socket.app.events import EventDispatcher
from gos_web_socket.app.exceptions import PushFailed, PushHandlerError
from gos_web_socket.app.message import Message
from gos_web_socket.app.router import Router
from gos_web_socket.app.transports.contract import Delivery, Receiver
from gos_web_socket.app.transports.handler import ServerPushHandler
from gos_web_socket.app.transports.pusher import Pusher


class InMemoryPusher(Pusher):
    """Records every envelope in ``sent``; linked to a ``target`` handler, also queues it there.

    With a target, ``push()`` returns once the body is queued (as a broker would take it);
    when the target is not started, the push fails with ``PushFailed``.
    """

    def __init__(self, router: Router, target: InMemoryServerPushHandler | None = None) -> None:
        super().__init__(router)
        self.target = target
        self.sent: list[tuple[Message, dict[str, Any]]] = []

    async def send(self, envelope: Message, context: dict[str, Any]) -> None:
        if self.target is not None:
            try:
                self.target.memory.put(MemoryDelivery(envelope.encode()))
            except PushHandlerError as exc:
                raise PushFailed(f"in-memory push failed: {exc}", transport="memory") from exc
        self.sent.append((envelope, context))


class MemoryDelivery(Delivery):
    """A fed body; ``outcome`` resolves when the handler settles it (acked: None)."""

    __slots__ = ("outcome",)

    def __init__(self, body: bytes, message_id: str | None = None) -> None:
        super().__init__(body, message_id)
        self.outcome: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.outcome.add_done_callback(_seen)  # a pushed delivery has nobody waiting for it

    async def ack(self, multiple: bool = False) -> None:
        if not self.outcome.done():
            self.outcome.set_result(None)

    async def reject(self, error: Exception) -> None:
        if not self.outcome.done():
            self.outcome.set_exception(error)


def _seen(outcome: asyncio.Future[None]) -> None:
    if not outcome.cancelled():
        outcome.exception()


class InMemoryReceiver(Receiver):
    """Deliveries put on an asyncio queue in this process; acks resolve the feeder's wait."""

    acknowledges = True

    def __init__(self) -> None:
        self._inbox: asyncio.Queue[MemoryDelivery | None] | None = None

    async def open(self) -> None:
        self._inbox = asyncio.Queue()

    def put(self, delivery: MemoryDelivery) -> None:
        if self._inbox is None:
            raise PushHandlerError("the in-memory push handler has not been started")
        self._inbox.put_nowait(delivery)

    async def receive(self) -> Sequence[MemoryDelivery]:
        inbox = self._inbox
        if inbox is None:
            return []
        first = await inbox.get()
        if first is None:
            return []
        batch = [first]
        while not inbox.empty() and (more := inbox.get_nowait()) is not None:
            batch.append(more)
        return batch

    async def cancel(self) -> None:
        if self._inbox is not None:
            self._inbox.put_nowait(None)

    async def close(self) -> None:
        inbox, self._inbox = self._inbox, None
        while inbox is not None and not inbox.empty():  # nobody will settle these now
            item = inbox.get_nowait()
            if item is not None:
                await item.reject(PushHandlerError("the in-memory push handler closed"))

    @property
    def is_open(self) -> bool:
        return self._inbox is not None


class InMemoryServerPushHandler(ServerPushHandler):
    """Delivers bodies given to ``await handler.feed(body)`` to the server, as a transport would."""

    def __init__(self, router: Router, dispatcher: EventDispatcher) -> None:
        self.memory = InMemoryReceiver()
        super().__init__(router, dispatcher, self.memory)

    async def feed(self, body: bytes | str, message_id: str | None = None) -> Message:
        """Hand one raw body to the server; return once its frames were written.

        Raises:
            asyncio.InvalidStateError: the handler has not been started.
            Exception: what rejected the body (the one ``push_fail`` carried).
        """
        if not self.is_consuming:
            raise asyncio.InvalidStateError("the handler has not been started")
        raw = body.encode() if isinstance(body, str) else body
        delivery = MemoryDelivery(raw, message_id)
        self.memory.put(delivery)
        await delivery.outcome
        return Message.decode(raw)
