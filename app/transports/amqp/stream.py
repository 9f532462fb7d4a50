"""The AMQP stream receiver: every node reads one log (a RabbitMQ stream) from its own offset.

See docs/streams.md.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aio_pika.abc import AbstractIncomingMessage, AbstractQueue

from gos_web_socket.app.position import Position
from gos_web_socket.app.transports.amqp.offsets import OffsetFile, SavedOffset
from gos_web_socket.app.transports.amqp.receiver import AmqpDelivery, AmqpReceiver
from gos_web_socket.app.transports.amqp.sidereads import (
    STREAM_OFFSET,
    StreamSideReads,
    message_identity,
    stream_offset,
)
from gos_web_socket.app.transports.amqp.topology import (
    declare_dead_letters,
    declare_exchange,
    declare_stream,
    stream_name,
)
from gos_web_socket.app.transports.contract import Delivery, LogReceiver
from gos_web_socket.settings.models import AmqpSettings

__all__ = ["AmqpStreamDelivery", "AmqpStreamReceiver"]

logger = logging.getLogger(__name__)


class AmqpStreamDelivery(AmqpDelivery):
    """A stream message: acked for the broker's credit, and its offset written down."""

    __slots__ = ()

    receiver: AmqpStreamReceiver

    def __init__(
        self, message: AbstractIncomingMessage, receiver: AmqpStreamReceiver, position: Position
    ) -> None:
        super().__init__(message, receiver)
        self.position = position

    async def ack(self, multiple: bool = False) -> None:
        await super().ack(multiple)
        self.receiver.handled(self)

    async def reject(self, error: Exception) -> None:
        await super().reject(error)
        self.receiver.handled(self)


class AmqpStreamReceiver(AmqpReceiver, LogReceiver):
    """Reads the stream from this node's own offset (``queue_mode: stream``).

    Every node reads every push; nothing is removed by an ack. On open the receiver finds the
    stream's epoch (the identity of its first retained message, so it changes when the stream
    is recreated) and where to start:

    - its offset file names a message the stream still holds at that offset: right after it;
    - no offset file (a new node): at the stream's end (``next``);
    - a file naming a message the stream no longer has at that offset (recreated): the
      stream's beginning, and the epoch changes.

    Streams have no dead-lettering: a poison push is published to the dead-letter queue by the
    receiver (reason in ``x-gos-reject-reason``) and its offset is passed.
    """

    def __init__(self, settings: AmqpSettings, node_id: str) -> None:
        super().__init__(settings, stream_name(settings), node_id, per_node=False)
        self.offsets = OffsetFile(
            settings.stream.state_dir, self.queue_name, settings.stream.state_name()
        )
        self.epoch: str | None = None
        """The stream's epoch; None until the stream holds a message."""
        self.side = StreamSideReads(settings, self.queue_name)
        """Where the stream starts and ends, and ranges read back for channel history."""
        self.start: int | str = "next"
        """Where the last ``open()`` started reading."""
        self.head: int | None = None
        """The first offset the stream held at the last ``open()``."""
        self.resume_at: int | None = None
        """The first offset this node had not handled; those before it are refills."""
        self._unsaved: AmqpStreamDelivery | None = None
        """The last delivery handled and not yet written down (``stream.save_interval``)."""
        self._saving: asyncio.TimerHandle | None = None

    async def _open(self) -> None:
        self.offsets.lock()
        channel = await self._connect("stream reader")
        connection = self._connection
        assert connection is not None
        exchange = await declare_exchange(channel, self.settings)
        await declare_dead_letters(connection, self.settings)
        queue = await declare_stream(channel, self.settings, exchange)
        await self.dead_letters.publish_on(connection)
        self.start = await self._start_offset(queue)
        self._queue = queue
        self._consumer_tag = await queue.consume(
            self._on_message, arguments={STREAM_OFFSET: self.start}
        )
        logger.info(
            "AMQP stream %s: epoch %s, reading from %s", self.queue_name, self.epoch, self.start
        )

    @property
    def marker_keys(self) -> list[str]:
        """Every node reads the whole stream: markers take the pushes' own routes."""
        return self.settings.binding_keys

    async def read_back(self, first: int, last: int) -> Sequence[Delivery]:
        epoch = self.epoch
        if epoch is None or self._connection is None or last < first:
            return []
        return await self.side.read_back(self._connection, epoch, first, last)

    async def _start_offset(self, queue: AbstractQueue) -> int | str:
        """Where to consume from: ``stream.fill`` pushes before the resume point, read back
        (``refill``) so that channel history holds what the node delivered before it stopped."""
        start = await self._choose_start()
        self.resume_at = start if isinstance(start, int) else None
        self.opened_at = None
        if isinstance(start, int) and self.epoch is not None:
            fill = self.settings.stream.fill
            if fill and start > (self.head or 0):
                start = max(start - fill, self.head or 0)
            self.opened_at = Position(self.epoch, start - 1)
        return start

    async def _choose_start(self) -> int | str:
        assert self._connection is not None
        head = await self.side.probe(self._connection, "first")
        self.head = head[0] if head else None
        self.epoch = head[1] if head else None
        saved = self.offsets.load()
        if saved is None:
            if head is None:
                return "first"
            tail = await self.side.tail(
                self._connection
            )  # a new node: after what the stream holds now
            return "next" if tail is None else tail + 1
        if head is not None and saved.epoch == self.epoch:
            return saved.offset + 1
        there = await self.side.probe(self._connection, saved.offset) if head is not None else None
        if there == (saved.offset, saved.identity):
            return saved.offset + 1  # the same stream; its head moved (retention)
        logger.warning(
            "AMQP stream %s no longer holds offset %s that this node handled last: it was "
            "recreated; reading it from the beginning (epoch %s -> %s)",
            self.queue_name,
            saved.offset,
            saved.epoch,
            self.epoch,
        )
        return "first"

    def _delivery(self, message: AbstractIncomingMessage) -> AmqpDelivery:
        offset = stream_offset(message)
        if self.epoch is None:  # the stream was empty at open: its first message names it
            self.epoch = message_identity(offset, message)
        delivery = AmqpStreamDelivery(message, self, Position(self.epoch, offset))
        delivery.refill = self.resume_at is not None and offset < self.resume_at
        return delivery

    def handled(self, delivery: AmqpStreamDelivery) -> None:
        """Note the last push the node is done with (not a refill): it is written down within
        ``stream.save_interval`` seconds (a file write per batch cost a tenth of the fan-out)."""
        if delivery.refill:
            return
        self._unsaved = delivery
        if self._saving is None:
            interval = self.settings.stream.save_interval
            self._saving = asyncio.get_running_loop().call_later(interval, self._save)

    def _save(self) -> None:
        self._saving = None
        delivery, self._unsaved = self._unsaved, None
        if delivery is None:
            return
        position = delivery.position
        assert position is not None
        identity = message_identity(position.offset, delivery.message)
        self.offsets.save(SavedOffset(position.epoch, position.offset, identity))

    async def close(self) -> None:
        if self._saving is not None:
            self._saving.cancel()
        self._save()  # what was handled up to now, before the lock goes
        await super().close()
        self.offsets.unlock()
