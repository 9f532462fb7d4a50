"""Dead-lettering a push the handler could not deliver: by the broker, or by the handler itself.

A queue declared by us dead-letters on ``reject(requeue=False)`` (``x-dead-letter-exchange``).
An adopted queue (declared by GOS's PHP server, no arguments) and a stream have no broker-side
dead-lettering: the handler publishes the message to ``dead_letter_queue`` itself, confirmed,
the reason in the ``x-gos-reject-reason`` header, and then acks it.
"""

from __future__ import annotations

import logging

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage
from aio_pika.exceptions import AMQPError, ChannelInvalidStateError

from gos_web_socket.settings.models import AmqpSettings

__all__ = ["DEAD_LETTER_REASON", "SETTLE_ERRORS", "DeadLetters"]

logger = logging.getLogger(__name__)

DEAD_LETTER_REASON = "x-gos-reject-reason"
"""Header carrying why a push was dead-lettered by the handler itself."""

SETTLE_ERRORS = (AMQPError, ChannelInvalidStateError, RuntimeError, OSError)
"""What an ack, reject or cancel on a dying channel raises: the broker redelivers."""


class DeadLetters:
    """Where a receiver's failed pushes go: ``reject`` unless ``publish_on`` gave it a channel
    of its own (with publisher confirms) to publish them to the dead-letter queue."""

    def __init__(self, settings: AmqpSettings) -> None:
        self.settings = settings
        self.channel: AbstractChannel | None = None

    @property
    def published(self) -> bool:
        """True when failed pushes are published by the handler, not rejected."""
        return self.channel is not None

    async def publish_on(self, connection: AbstractConnection) -> None:
        """From now on publish dead letters on a new confirmed channel of ``connection``."""
        self.channel = await connection.channel(publisher_confirms=True)

    def reset(self) -> None:
        """Back to rejecting (the connection is gone; the next open decides again)."""
        self.channel = None

    async def settle(self, message: AbstractIncomingMessage, error: Exception) -> None:
        """Reject without requeue, or publish to the dead-letter queue and ack."""
        try:
            if self.channel is None:
                await message.reject(requeue=False)
                return
            headers = dict(message.headers or {})
            headers[DEAD_LETTER_REASON] = str(error)[:1000] or type(error).__name__
            await self.channel.default_exchange.publish(
                aio_pika.Message(
                    message.body,
                    headers=headers,
                    content_type=message.content_type,
                    message_id=message.message_id,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                self.settings.dead_letter_queue,
            )
            await message.ack()
        except SETTLE_ERRORS as exc:
            logger.debug("AMQP reject lost: %r", exc)  # redelivered, and rejected again
