"""Settling a push handler's deliveries: repeated message ids, and when acks go out.

``ServerPushHandler`` (app/transports/handler.py) decides what a delivery is (a canary marker,
a refill, a push for a topic); ``Settler`` decides how it is settled, which is the same for
every transport: a message id settled before is settled the same way again without reaching
the topic, the deliveries of a batch are acked after one ``await app.flushed()``, and a reject
is sent only after the acks of the deliveries ahead of it (delivery order). Kept apart so the
handler reads as the receive loop it is, and the ack rules sit in one place.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence

from gos_web_socket.app.exceptions import PushHandlerError
from gos_web_socket.app.stats import PushHandlerStats
from gos_web_socket.app.transports.contract import Delivery, PushableServer, Receiver

__all__ = ["SettledIds", "Settler"]


class SettledIds:
    """The outcome of the last ``size`` message ids settled (0: none kept), oldest forgotten
    first: a redelivery is settled like the first delivery was."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._outcomes: OrderedDict[str, bool] = OrderedDict()  # message_id -> delivered

    def outcome(self, message_id: str) -> bool | None:
        """True: delivered; False: failed; None: not seen (or forgotten)."""
        return self._outcomes.get(message_id)

    def settled(self, message_id: str | None, delivered: bool) -> None:
        if message_id is None or not self.size:
            return
        self._outcomes[message_id] = delivered
        if len(self._outcomes) > self.size:
            self._outcomes.popitem(last=False)


class Settler:
    """Settles the deliveries of one receiver: once per message id, acks after the write.

    ``stats`` is the handler's: repeats count as received and deduplicated.
    """

    def __init__(self, receiver: Receiver, stats: PushHandlerStats, dedup_window: int) -> None:
        self.receiver = receiver
        self.stats = stats
        self.seen = SettledIds(dedup_window)

    async def settle_batch(
        self,
        app: PushableServer,
        batch: Sequence[Delivery],
        deliver: Callable[[Delivery], Awaitable[Exception | None]],
    ) -> None:
        """Hand each delivery to ``deliver`` in order (it returns the error that should
        reject the delivery, or None), then ack or reject it, in delivery order."""
        handled: list[Delivery] = []
        for delivery in batch:
            error = await deliver(delivery)
            if error is None:
                handled.append(delivery)
                continue
            await self.ack(app, handled)  # acks ahead of the reject: delivery order
            handled = []
            await delivery.reject(error)
        await self.ack(app, handled)

    async def ack(self, app: PushableServer, handled: list[Delivery]) -> None:
        """Ack ``handled`` once the server wrote their frames (one ack when it takes many)."""
        if not handled:
            return
        if self.receiver.acknowledges:
            await app.flushed()  # on_push only queued the frames; ack once they are written
        if self.receiver.acks_multiple:
            await handled[-1].ack(multiple=True)
        else:
            for delivery in handled:
                await delivery.ack()

    async def once(
        self, message_id: str | None, handle: Callable[[], Awaitable[object]]
    ) -> Exception | None:
        """Run ``handle`` unless ``message_id`` was settled before; return the error that
        should reject the delivery (the first outcome again for a repeat), or None."""
        delivered = None if message_id is None else self.seen.outcome(message_id)
        if delivered is not None:
            self.stats.received += 1
            self.stats.deduplicated += 1
            if delivered:
                return None  # a redelivered duplicate: the topic had it already
            return PushHandlerError(f"message {message_id} failed before; rejecting it again")
        try:
            await handle()
        except Exception as exc:  # handle fired push_fail already
            self.seen.settled(message_id, False)
            return exc
        self.seen.settled(message_id, True)
        return None
