"""The backend's side of presence lifecycle events: read the queue the server fills.

A Django or Celery process runs ``consume`` (async) or ``consume_forever`` (blocking) with a
handler that takes one ``PresenceEvent``. A message is acknowledged only after the handler
returned, so a crash redelivers it: delivery is at least once, and ``Deduplicator`` drops
the repeats by event id (examples/presence_consumer.py). A handler that raises gets the event
again (requeued after ``retry_delay``); only a handled event counts as seen.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable

import aio_pika

from gos_web_socket.app.presence.base import PresenceEvent

logger = logging.getLogger(__name__)

Handler = Callable[[PresenceEvent], Awaitable[None] | None]


class Deduplicator:
    """The ids of the last ``size`` handled events: ``seen(event)`` is True for a repeat."""

    def __init__(self, size: int = 100_000) -> None:
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def seen(self, event: PresenceEvent) -> bool:
        return event.id in self._ids

    def handled(self, event: PresenceEvent) -> None:
        """Remember ``event`` once its handler succeeded (a failed one must come again)."""
        self._ids[event.id] = None
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)


async def consume(
    url: str,
    handler: Handler,
    queue: str = "gos_websocket_presence",
    stop: asyncio.Event | None = None,
    prefetch: int = 100,
    deduplicate: Deduplicator | None = None,
    retry_delay: float = 1.0,
) -> None:
    """Hand every event of ``queue`` to ``handler`` until ``stop`` is set; an event is acked
    after the handler returned, rejected (dropped, logged) when it is not an event at all,
    requeued ``retry_delay`` seconds after the handler raised (logged; consuming goes on).
    Repeats ``deduplicate`` recognises are acked without calling the handler."""
    stop = stop or asyncio.Event()
    connection = await aio_pika.connect_robust(url)
    try:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        declared = await channel.declare_queue(queue, durable=True)
        async with declared.iterator() as messages:
            waiting = asyncio.ensure_future(stop.wait())
            while not stop.is_set():
                getting = asyncio.ensure_future(anext(messages))
                await asyncio.wait({getting, waiting}, return_when=asyncio.FIRST_COMPLETED)
                if not getting.done():
                    getting.cancel()
                    break
                message = getting.result()
                try:
                    event = PresenceEvent.from_dict(json.loads(message.body))
                except (ValueError, KeyError, TypeError) as exc:
                    logger.error("presence consumer: not an event (%r); dropped", exc)
                    await message.reject()
                    continue
                if deduplicate is not None and deduplicate.seen(event):
                    await message.ack()
                    continue
                try:
                    result = handler(event)
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    logger.exception("presence consumer: handler failed on %s; requeued", event.id)
                    await asyncio.sleep(retry_delay)
                    await message.nack(requeue=True)
                    continue
                if deduplicate is not None:
                    deduplicate.handled(event)
                await message.ack()
            waiting.cancel()
    finally:
        await connection.close()


def consume_forever(url: str, handler: Handler, queue: str = "gos_websocket_presence") -> None:
    """``consume`` for synchronous code (a management command, a worker): blocks until killed."""
    asyncio.run(consume(url, handler, queue, deduplicate=Deduplicator()))
