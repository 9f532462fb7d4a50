"""The shipped consumer: a handler that fails gets the event again, and a repeat is dropped
only once the handler succeeded."""

from __future__ import annotations

import asyncio
import json
import uuid

import aio_pika

from gos_web_socket.app.presence import PresenceEvent
from gos_web_socket.app.presence.consumer import Deduplicator, consume
from tests.support.rabbitmq import RabbitMQNode


async def publish(url: str, queue: str, events: list[PresenceEvent]) -> None:
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        await channel.declare_queue(queue, durable=True)
        for event in events:
            body = json.dumps(event.as_dict()).encode()
            await channel.default_exchange.publish(aio_pika.Message(body), routing_key=queue)
    finally:
        await connection.close()


async def test_a_failing_handler_gets_the_event_again(rabbitmq: RabbitMQNode) -> None:
    """The handler raises on its first try of event A: consume goes on, A comes again and is
    handled (not taken for a repeat), B once."""
    queue = f"presence-{uuid.uuid4().hex[:8]}"
    first = PresenceEvent("gos_web_socket.presence.joined", "42", "acme/chat/7")
    second = PresenceEvent("gos_web_socket.presence.left", "42", "acme/chat/7")
    await publish(rabbitmq.url, queue, [first, second])
    tries: list[str] = []
    handled: list[str] = []
    stop = asyncio.Event()

    def handler(event: PresenceEvent) -> None:
        tries.append(event.id)
        if event.id == first.id and tries.count(first.id) == 1:
            raise RuntimeError("the backend's database is away")
        handled.append(event.id)
        if {first.id, second.id} <= set(handled):
            stop.set()

    deduplicate = Deduplicator()
    consuming = consume(
        rabbitmq.url, handler, queue, stop, deduplicate=deduplicate, retry_delay=0.1
    )
    await asyncio.wait_for(consuming, 30.0)
    assert sorted(handled) == sorted([first.id, second.id])
    assert tries.count(first.id) == 2 and tries.count(second.id) == 1
    assert deduplicate.seen(first) and deduplicate.seen(second)
