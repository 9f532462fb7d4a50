"""The AMQP canary's markers: published the way pushes come, and the shared mode's side queue.

See app/transports/canary.py and docs/canary.md for what a marker proves in each queue mode.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage, ConsumerTag

from gos_web_socket.app.exceptions import PushHandlerError
from gos_web_socket.settings.models import AmqpSettings

__all__ = ["AmqpMarkers"]


class AmqpMarkers:
    """Markers published, confirmed, on a channel of their own (opened by the first one),
    taking ``keys`` in turn, so each of them is proved routed to the node."""

    def __init__(self, settings: AmqpSettings, keys: list[str]) -> None:
        self.settings = settings
        self.keys = keys
        self.sent = 0
        self.side_tag: ConsumerTag | None = None
        """The consumer of the shared mode's side queue, once it consumes."""
        self._channel: AbstractChannel | None = None

    async def consume_side_queue(
        self,
        channel: AbstractChannel,
        on_message: Callable[[AbstractIncomingMessage], Awaitable[None]],
    ) -> None:
        """The shared mode's queue of this node's own (``keys`` is its one name and key):
        consumers of the shared queue compete, so a marker sent there could reach another node."""
        (key,) = self.keys
        queue = await channel.declare_queue(key, exclusive=True, auto_delete=True)
        await queue.bind(self.settings.exchange_name, key)
        self.side_tag = await queue.consume(on_message)

    async def send(self, connection: AbstractConnection | None, body: bytes) -> None:
        """Publish one marker on ``connection`` with the next key; it expires after the
        canary's timeout, so a dead node's queue (until its ``x-expires``) keeps none."""
        if connection is None or connection.is_closed:
            raise PushHandlerError("AMQP push handler is not connected")
        if self._channel is None or self._channel.is_closed:
            self._channel = await connection.channel(publisher_confirms=True)
        exchange = await self._channel.get_exchange(self.settings.exchange_name, ensure=False)
        expiration = timedelta(seconds=self.settings.canary.timeout)
        self.sent += 1
        key = self.keys[self.sent % len(self.keys)]
        await exchange.publish(aio_pika.Message(body, expiration=expiration), key)

    def reset(self) -> None:
        """The connection is gone (``close()``): the next marker opens a new channel."""
        self._channel, self.side_tag = None, None
