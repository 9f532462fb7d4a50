"""The AMQP queue receiver: consumes one queue, acks in batches, dead-letters what fails."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import aiormq
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractIncomingMessage,
    AbstractQueue,
    ConsumerTag,
)
from aio_pika.exceptions import AMQPError, ChannelPreconditionFailed

from gos_web_socket.app.exceptions import PushHandlerError
from gos_web_socket.app.transports.amqp.deadletters import SETTLE_ERRORS, DeadLetters
from gos_web_socket.app.transports.amqp.markers import AmqpMarkers
from gos_web_socket.app.transports.amqp.topology import (
    BrokerRing,
    adopt_queue,
    connect_any,
    declare_dead_letters,
    declare_exchange,
    declare_queue,
    where as brokers,
)
from gos_web_socket.app.transports.contract import Delivery, Receiver
from gos_web_socket.settings.models import AmqpSettings

__all__ = ["AmqpDelivery", "AmqpReceiver"]

logger = logging.getLogger(__name__)

_adopted_logged: set[tuple[str, str]] = set()  # (node, queue): warn once per process


class AmqpDelivery(Delivery):
    """One AMQP message; its ack and reject go to the channel it came on."""

    __slots__ = ("message", "receiver")

    def __init__(self, message: AbstractIncomingMessage, receiver: AmqpReceiver) -> None:
        super().__init__(message.body, message.message_id)
        self.message = message
        self.receiver = receiver

    async def ack(self, multiple: bool = False) -> None:
        try:
            await self.message.ack(multiple=multiple)
        except SETTLE_ERRORS as exc:
            # Its channel died: the broker redelivers, and dedup keeps the topic from a repeat.
            logger.debug("AMQP ack lost: %r", exc)

    async def reject(self, error: Exception) -> None:
        await self.receiver.dead_letters.settle(self.message, error)


class AmqpReceiver(Receiver):
    """Consumes one queue over a plain (not robust) connection: the supervisor reconnects.

    The topology is declared on open: the exchange, the dead-letter exchange and queue, the
    push queue with ``x-dead-letter-exchange``, and its bindings. A queue that already exists
    with other arguments (GOS's PHP server declared ``gos_websocket`` without any) is adopted
    as it is: consumed after a passive declare, bound, and poison messages are published to
    the dead-letter queue by the receiver (reason in the ``x-gos-reject-reason`` header) and
    then acked.
    """

    acknowledges = True
    acks_multiple = True

    def __init__(
        self, settings: AmqpSettings, queue_name: str, node_id: str, per_node: bool
    ) -> None:
        self.settings = settings
        self.queue_name = queue_name
        self.node_id = node_id
        self.per_node = per_node
        self.max_batch = max(1, settings.prefetch_count // 2)
        self.adopted = False
        """True when the queue was found with other arguments and is consumed as it is."""
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self.dead_letters = DeadLetters(settings)
        """Rejects failed pushes, or publishes them itself (adopted queue, stream)."""
        self._queue: AbstractQueue | None = None
        self._consumer_tag: ConsumerTag | None = None
        self.markers = AmqpMarkers(settings, self.marker_keys)
        self.ring = BrokerRing(settings)
        """The brokers in the order the next ``open()`` tries them (the last one used last)."""
        self.where = ""
        """The broker consumed from (``host:port``)."""
        self._inbox: asyncio.Queue[AbstractIncomingMessage | BaseException | None] = asyncio.Queue()

    @property
    def is_open(self) -> bool:
        return (
            self._consumer_tag is not None
            and self._connection is not None
            and not self._connection.is_closed
            and self._channel is not None
            and not self._channel.is_closed
        )

    async def open(self) -> None:
        where = brokers(self.settings)
        try:
            await self._open()
        except (AMQPError, OSError, RuntimeError, TimeoutError) as exc:
            raise PushHandlerError(
                f"AMQP push handler cannot consume {self.queue_name!r} on {where}: {exc!r}"
            ) from exc
        where = self.where
        logger.info(
            "AMQP push handler consuming %s on %s%s",
            self.queue_name,
            where,
            " (adopted as it is)" if self.adopted else "",
        )

    async def _connect(self, role: str) -> AbstractChannel:
        """A fresh connection named ``role`` (as the broker's UI lists it) and its channel."""
        self._inbox = asyncio.Queue()
        connection = await connect_any(self.settings, self.ring, f"gos {role} {self.node_id}")
        self.where = self.ring.where()
        self._connection = connection
        connection.close_callbacks.add(self._on_close)
        return await self._open_channel()

    async def _open(self) -> None:
        self.adopted = False
        channel = await self._connect("push handler")
        connection = self._connection
        assert connection is not None
        exchange = await declare_exchange(channel, self.settings)
        await declare_dead_letters(connection, self.settings)
        try:
            queue = await declare_queue(
                channel, self.settings, exchange, self.queue_name, per_node=self.per_node
            )
        except ChannelPreconditionFailed as exc:
            # The refusal closed the channel: adopt the queue as it is on a fresh one (that
            # close is expected, so it must not read as a lost connection).
            channel.close_callbacks.discard(self._on_close)
            channel = await self._open_channel()
            self._inbox = asyncio.Queue()
            queue = await adopt_queue(channel, self.settings, self.queue_name)
            await self.dead_letters.publish_on(connection)
            self.adopted = True
            if (self.where, self.queue_name) not in _adopted_logged:
                _adopted_logged.add((self.where, self.queue_name))
                logger.warning(
                    "AMQP queue %s exists with other arguments (%s); consuming it as it is. It "
                    "has no broker-side dead-lettering: the handler publishes poison messages "
                    "to %s itself",
                    self.queue_name,
                    exc,
                    self.settings.dead_letter_queue,
                )
        self._queue = queue
        self._consumer_tag = await queue.consume(self._on_message)
        if self.settings.canary.interval and not self.per_node:
            await self.markers.consume_side_queue(channel, self._on_message)

    @property
    def marker_keys(self) -> list[str]:
        """The routing keys markers take in turn: the pushes' binding keys (each one is proved
        bound within ``len(binding_keys)`` intervals), except on the shared queue, whose
        consumers compete: there each node binds a queue of its own, and the shared queue's
        bindings are not proved (docs/canary.md)."""
        if self.per_node:
            return self.settings.binding_keys
        return [f"{self.queue_name}.canary.{self.node_id}"]

    async def send_marker(self, body: bytes) -> None:
        """Publish a canary marker to the exchange, confirmed, as pushes come."""
        await self.markers.send(self._connection, body)

    async def _open_channel(self) -> AbstractChannel:
        assert self._connection is not None
        channel = await self._connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=self.settings.prefetch_count)
        channel.close_callbacks.add(self._on_close)
        underlay = await channel.get_underlay_channel()
        underlay.on_consumer_cancel_callbacks.add(self._on_consumer_cancel)
        self._channel = channel
        return channel

    def _on_consumer_cancel(self, frame: aiormq.spec.Basic.Cancel) -> None:
        """The broker dropped our consumer (its queue was deleted, a node left): receiving
        ends with an error, so the supervisor declares the queue again and consumes anew."""
        if frame.consumer_tag in (self._consumer_tag, self.markers.side_tag):
            self._consumer_tag = None  # is_open turns false: /health tells at once
            self._inbox.put_nowait(
                ConnectionError(f"the broker cancelled consumer {frame.consumer_tag}")
            )

    def _on_close(self, sender: object, exc: BaseException | None = None) -> None:
        if sender is self._connection or sender is self._channel:
            self._inbox.put_nowait(exc or ConnectionError("closed by the broker"))

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self._inbox.put_nowait(message)  # before any await: keeps delivery order

    async def receive(self) -> Sequence[Delivery]:
        inbox = self._inbox
        batch: list[Delivery] = []
        item = await inbox.get()
        while True:
            if item is None:  # cancel(): what was taken, then [] from every later call
                inbox.put_nowait(None)  # (aio-pika may hand over a delivery after the cancel)
                return batch
            if isinstance(item, BaseException):
                if batch:  # settle these first (their acks fail; the broker redelivers)
                    inbox.put_nowait(item)
                    return batch
                if self._connection is None:
                    return []  # close() ran
                raise PushHandlerError(f"AMQP connection lost: {item!r}") from item
            batch.append(self._delivery(item))
            if len(batch) >= self.max_batch or inbox.empty():
                return batch
            item = inbox.get_nowait()

    def _delivery(self, message: AbstractIncomingMessage) -> AmqpDelivery:
        return AmqpDelivery(message, self)

    async def cancel(self) -> None:
        queue, tag = self._queue, self._consumer_tag
        self._consumer_tag = None
        if queue is not None and tag is not None and self._channel is not None:
            if not self._channel.is_closed:
                try:
                    await queue.cancel(tag)
                except SETTLE_ERRORS as exc:
                    logger.debug("AMQP cancel failed: %r", exc)
        self._inbox.put_nowait(None)

    async def close(self) -> None:
        connection = self._connection
        self._connection = self._channel = None
        self.dead_letters.reset()
        self._queue, self._consumer_tag = None, None
        self.markers.reset()
        self._inbox.put_nowait(None)
        if connection is not None and not connection.is_closed:
            try:
                await connection.close()
            except SETTLE_ERRORS as exc:
                logger.debug("AMQP close failed: %r", exc)
