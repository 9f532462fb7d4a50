"""Lifecycle events on the backend's AMQP queue: at least once, through a broker outage."""

from __future__ import annotations

import asyncio
import uuid

from gos_web_socket.app.presence import PresenceEvent
from gos_web_socket.app.presence.consumer import Deduplicator, consume
from tests.presence.conftest import presence_server
from tests.support.rabbitmq import RabbitMQNode
from tests.support.waiting import eventually

ROOM = "acme/chat/7"


async def read(
    url: str, queue: str, count: int, within: float = 30.0, quiet: float = 2.0
) -> list[PresenceEvent]:
    """Every event of ``queue`` once ``count`` came and then none for ``quiet`` seconds (a
    duplicate past ``count`` shows), through the shipped consumer."""
    events: list[PresenceEvent] = []
    stop = asyncio.Event()

    def take(event: PresenceEvent) -> None:
        events.append(event)

    async def until_quiet() -> None:
        seen = -1
        while len(events) < count or len(events) != seen:
            seen = len(events) if len(events) >= count else -1
            await asyncio.sleep(quiet if seen >= 0 else 0.05)
        stop.set()

    watcher = asyncio.ensure_future(until_quiet())
    try:
        await asyncio.wait_for(consume(url, take, queue, stop, deduplicate=Deduplicator()), within)
    finally:
        watcher.cancel()
    return events


async def test_events_reach_the_queue(rabbitmq: RabbitMQNode) -> None:
    """connected, joined, left, disconnected of one user with two tabs reach the queue once each."""
    queue = f"presence-{uuid.uuid4().hex[:8]}"
    amqp = {"amqp": {"enabled": False, "port": rabbitmq.port}}
    async with presence_server({"queue": {"enabled": True, "queue": queue}}, pushers=amqp) as s:
        tabs = [await s.client("42"), await s.client("42")]
        for tab in tabs:
            tab.subscribe(ROOM)
        await eventually(lambda: s.presence.counts(ROOM) == (2, 1))
        for tab in tabs:
            await tab.close()
        events = await read(rabbitmq.url, queue, 4)
    kinds = [(e.kind.rsplit(".", 1)[1], e.user_id, e.channel) for e in events]
    assert kinds == [
        ("connected", "42", None),
        ("joined", "42", ROOM),
        ("left", "42", ROOM),
        ("disconnected", "42", None),
    ]
    assert len({e.id for e in events}) == 4


async def test_events_wait_out_a_broker_outage(rabbitmq: RabbitMQNode) -> None:
    """Events made while the broker is stopped are delivered after it is back, none lost."""
    queue = f"presence-{uuid.uuid4().hex[:8]}"
    amqp = {"amqp": {"enabled": False, "port": rabbitmq.port, "reconnect_interval": 0.5}}
    async with presence_server({"queue": {"enabled": True, "queue": queue}}, pushers=amqp) as s:
        outbox = s.container.gos_web_socket.presence_outbox()
        await eventually(lambda: outbox.connected, 20.0, "outbox connected")
        await asyncio.to_thread(rabbitmq.stop_app)
        try:
            await eventually(lambda: not outbox.connected, 20.0, "outbox sees the outage")
            client = await s.client("43")
            client.subscribe(ROOM)
            await eventually(lambda: outbox.pending >= 2, what="events wait in the outbox")
        finally:
            await asyncio.to_thread(rabbitmq.start_app)
        await eventually(lambda: outbox.pending == 0, 60.0, "outbox drained")
        events = await read(rabbitmq.url, queue, 2)
    assert [(e.kind.rsplit(".", 1)[1], e.user_id) for e in events] == [
        ("connected", "43"),
        ("joined", "43"),
    ]
