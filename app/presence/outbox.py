"""Lifecycle events to an AMQP queue, at least once (``presence.queue``).

Events wait in memory, in order, until the broker confirmed them (publisher confirms,
persistent messages, a durable queue); a publish that fails is tried again after the
connection came back, so an event can arrive twice: its ``message_id`` is the event id, the
same on every attempt, for the consumer to drop repeats (consumer.py). While the broker is
away the events wait (at most ``outbox_size``; beyond, the oldest go, logged).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection

from gos_web_socket.app.presence.base import PresenceEvent
from gos_web_socket.app.transports.amqp.topology import broker_url
from gos_web_socket.settings.presence import PresenceQueueSettings
from gos_web_socket.settings.pushers import AmqpSettings

logger = logging.getLogger(__name__)


class PresenceOutbox:
    """The AMQP ``LifecycleSink``: nothing happens unless ``presence.queue.enabled``."""

    def __init__(self, amqp: AmqpSettings, settings: PresenceQueueSettings) -> None:
        self.amqp = amqp
        self.settings = settings
        self.enabled = settings.enabled
        self._events: deque[PresenceEvent] = deque()
        self._wake = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()
        self._task: asyncio.Task[None] | None = None
        self.published = 0
        self.dropped = 0
        self.connected = False
        """Whether the broker takes events now (presence on other nodes is stale without)."""

    @property
    def pending(self) -> int:
        """Events not confirmed by the broker yet."""
        return len(self._events)

    def emit(self, event: PresenceEvent) -> None:
        if not self.enabled:
            return
        if len(self._events) >= self.settings.outbox_size:
            self._events.popleft()
            self.dropped += 1
            logger.warning("presence outbox full (%d): oldest event dropped", len(self._events))
        self._events.append(event)
        self._empty.clear()
        self._wake.set()

    async def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def flushed(self, within: float) -> bool:
        """Wait until every event was confirmed, at most ``within`` seconds."""
        try:
            await asyncio.wait_for(self._empty.wait(), within)
        except TimeoutError:
            return False
        return True

    async def close(self, within: float = 5.0) -> None:
        """Confirm what is left (at most ``within`` s), then stop; what remains is logged."""
        if self._task is None:
            return
        if not await self.flushed(within):
            logger.warning("presence outbox: %d events not delivered at stop", len(self._events))
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    async def _run(self) -> None:
        delay = self.amqp.reconnect_interval
        while True:
            connection: AbstractConnection | None = None
            try:
                # A plain connection: its loss ends _publish_all, and this loop reconnects.
                connection = await aio_pika.connect(broker_url(self.amqp), timeout=10.0)
                connection.close_callbacks.add(self._lost)
                channel = await connection.channel(publisher_confirms=True)
                await channel.declare_queue(self.settings.queue, durable=True)
                self.connected = True
                await self._publish_all(channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("presence outbox: broker away (%r); retrying in %s s", exc, delay)
            finally:
                self.connected = False
                if connection is not None:
                    await connection.close()
            await asyncio.sleep(delay)

    def _lost(self, *_: object) -> None:
        """The connection closed: presence is stale until it is back."""
        self.connected = False
        self._wake.set()

    async def _publish_all(self, channel: AbstractChannel) -> None:
        """Publish the oldest event until it is confirmed, then the next, while connected."""
        while True:
            while not self._events and self.connected:
                self._wake.clear()
                await self._wake.wait()
            if not self.connected:
                raise ConnectionError("the broker connection closed")
            event = self._events[0]
            message = aio_pika.Message(
                json.dumps(event.as_dict(), default=str).encode(),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=event.id,
                type=event.kind,
            )
            await channel.default_exchange.publish(message, routing_key=self.settings.queue)
            if self._events and self._events[0] is event:
                self._events.popleft()
            if not self._events:
                self._empty.set()
            self.published += 1
