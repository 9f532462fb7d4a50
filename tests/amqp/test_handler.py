"""The AMQP push handler: poison messages, dedup, order, restarts, GOS wire format, nodes."""

from __future__ import annotations

import asyncio

import aio_pika
import pytest

from gos_web_socket.app.exceptions import (
    MessageDecodeError,
    NoRouteMatch,
    PushHandlerError,
    PushUnsupported,
)
from gos_web_socket.app.message import Message
from gos_web_socket.app.router import Router
from gos_web_socket.app.transports.amqp.handler import AmqpServerPushHandler
from gos_web_socket.app.transports.amqp.pusher import AmqpPusher
from gos_web_socket.app.transports.amqp.receiver import AmqpReceiver
from gos_web_socket.settings.models import AmqpSettings
from tests.amqp.conftest import EventLog, RecordingServer, StartHandler, dead_letters
from tests.support.rabbitmq import RabbitMQNode, free_port
from tests.support.waiting import eventually


async def _publish_raw(
    channel: aio_pika.abc.AbstractChannel,
    settings: AmqpSettings,
    body: bytes,
    **properties: object,
) -> None:
    """Publish as a foreign producer would: our exchange, routing key '', given properties."""
    exchange = await channel.get_exchange(settings.exchange_name)
    await exchange.publish(aio_pika.Message(body, **properties), routing_key="")  # type: ignore[arg-type]


async def test_gos_php_message_is_delivered(
    start_handler: StartHandler,
    amqp_settings: AmqpSettings,
    raw_channel: aio_pika.abc.AbstractChannel,
) -> None:
    """A body exactly as PHP's GOS publishes it (escaped slash, no properties) reaches the topic."""
    server = RecordingServer()
    await start_handler(server)
    php_body = b'{"topic":"acme\\/channel\\/42","data":["hi"]}'
    await _publish_raw(raw_channel, amqp_settings, php_body)
    await eventually(lambda: len(server.received) == 1, within=10, every=0.01)
    assert server.received == [("acme/channel/42", ["hi"])]


async def test_poison_messages_go_to_the_dead_letter_queue(
    start_handler: StartHandler,
    pusher: AmqpPusher,
    amqp_settings: AmqpSettings,
    raw_channel: aio_pika.abc.AbstractChannel,
    events: EventLog,
) -> None:
    """Every kind of poison among good pushes: goods delivered, poisons dead-lettered once."""
    server = RecordingServer()
    handler = await start_handler(server)
    raw_poisons = [
        b"{not json",
        b'{"topic":"acme/channel/1"}',
        b'{"topic":"nowhere/at/all","data":[]}',
    ]
    expected_dead: list[bytes] = []
    for i in range(30):
        await pusher.push({"n": i}, "acme_topic", {"room": "1"})
        kind = i % 5
        if kind < 3:
            await _publish_raw(raw_channel, amqp_settings, raw_poisons[kind])
            expected_dead.append(raw_poisons[kind])
        elif kind == 3:
            await pusher.push({"n": f"p{i}"}, "plain_topic", {"room": "1"})
            expected_dead.append(Message("acme/plain/1", {"n": f"p{i}"}).encode())
        else:
            await pusher.push({"boom": True, "i": i}, "acme_topic", {"room": "1"})
            expected_dead.append(Message("acme/channel/1", {"boom": True, "i": i}).encode())

    await eventually(
        lambda: len(server.received) == 30 and len(events.fail) == 30, within=10, every=0.01
    )
    assert sorted(server.counts().items()) == [(i, 1) for i in range(30)]
    dead = await dead_letters(
        raw_channel, amqp_settings.dead_letter_queue, 30, within=6, every=0.02
    )
    assert sorted(dead) == sorted(expected_dead)
    assert sorted(e.message.encode() for e in events.fail) == sorted(expected_dead)
    kinds = {type(e.error) for e in events.fail}
    assert {MessageDecodeError, NoRouteMatch, PushUnsupported, RuntimeError} <= kinds
    assert len(events.success) == 30
    assert handler.is_consuming
    await pusher.push({"n": "after"}, "acme_topic", {"room": "1"})
    await eventually(lambda: server.counts()["after"] == 1, within=10, every=0.01)


async def test_duplicate_message_id_is_delivered_once(
    start_handler: StartHandler,
    amqp_settings: AmqpSettings,
    raw_channel: aio_pika.abc.AbstractChannel,
    events: EventLog,
    rabbitmq: RabbitMQNode,
) -> None:
    """The same message_id three times reaches the topic once; all copies are acked."""
    server = RecordingServer()
    await start_handler(server)
    body = b'{"topic":"acme/channel/9","data":{"n":"dup"}}'
    for _ in range(3):
        await _publish_raw(raw_channel, amqp_settings, body, message_id="same-id")
    await _publish_raw(raw_channel, amqp_settings, body.replace(b"dup", b"end"), message_id="x")
    await eventually(lambda: server.counts()["end"] == 1, within=10, every=0.01)
    assert server.counts()["dup"] == 1
    assert len(events.success) == 2 and events.fail == []
    queue = await raw_channel.declare_queue(amqp_settings.queue_name, passive=True)
    assert queue.declaration_result.message_count == 0


async def test_push_order_is_preserved(start_handler: StartHandler, pusher: AmqpPusher) -> None:
    """Pushes made one after another reach the topic in the same order."""
    server = RecordingServer()
    await start_handler(server)
    for i in range(300):
        await pusher.push({"n": i}, "acme_topic", {"room": "1"})
    await eventually(lambda: len(server.received) == 300, within=10, every=0.01)
    assert [data["n"] for _, data in server.received] == list(range(300))


async def test_pushes_wait_in_the_shared_queue_while_the_server_is_down(
    start_handler: StartHandler, pusher: AmqpPusher
) -> None:
    """Server stopped while pushes go on: after its restart every waiting push arrives once."""
    server = RecordingServer()
    handler = await start_handler(server)

    async def produce() -> None:
        for i in range(400):
            await pusher.push({"n": i}, "acme_topic", {"room": "1"})

    producing = asyncio.create_task(produce())
    await eventually(lambda: len(server.received) >= 50, within=10, every=0.01)
    await handler.close()
    assert not handler.is_consuming
    stopped_at = len(server.received)
    await producing
    assert stopped_at < 400, "the handler should have stopped before the pushes ended"
    await start_handler(server)
    await eventually(lambda: len(server.received) >= 400, within=10, every=0.01)
    assert sorted(server.counts().items()) == [(i, 1) for i in range(400)]


async def test_shared_queue_competing_consumers(
    start_handler: StartHandler, pusher: AmqpPusher
) -> None:
    """Two nodes on the shared GOS queue: each push reaches exactly one of them."""
    first, second = RecordingServer(), RecordingServer()
    await start_handler(first, node_id="a", prefetch_count=1)
    await start_handler(second, node_id="b", prefetch_count=1)
    await asyncio.gather(*(pusher.push({"n": i}, "acme_topic", {"room": "1"}) for i in range(200)))
    await eventually(
        lambda: len(first.received) + len(second.received) == 200, within=10, every=0.01
    )
    merged = first.counts() + second.counts()
    assert len(merged) == 200 and set(merged.values()) == {1}
    assert first.received and second.received


async def test_per_node_queues_each_get_every_push(
    start_handler: StartHandler,
    amqp_settings: AmqpSettings,
    router: Router,
    rabbitmq: RabbitMQNode,
) -> None:
    """per_node mode: one push reaches both nodes; a closed node's queue expires."""
    first, second = RecordingServer(), RecordingServer()
    node_a = await start_handler(first, node_id="a", queue_mode="per_node", node_queue_expires=1000)
    node_b = await start_handler(
        second, node_id="b", queue_mode="per_node", node_queue_expires=1000
    )
    assert (node_a.queue_name, node_b.queue_name) == (
        f"{amqp_settings.queue_name}.a",
        f"{amqp_settings.queue_name}.b",
    )
    pusher = AmqpPusher(amqp_settings.model_copy(update={"queue_mode": "per_node"}), router)
    try:
        await pusher.push("hi", "acme_topic", {"room": "42"})
    finally:
        await pusher.close()
    await eventually(
        lambda: len(first.received) == 1 and len(second.received) == 1, within=10, every=0.01
    )
    assert first.received == second.received == [("acme/channel/42", ["hi"])]

    await node_b.close()

    def queue_names() -> str:
        return rabbitmq.ctl("list_queues", "-q", "name").stdout

    await eventually(
        lambda: node_b.queue_name not in queue_names(), 15, "node b's queue expired", every=0.5
    )
    assert node_a.queue_name in queue_names()


async def test_start_without_broker_raises(
    amqp_settings: AmqpSettings, router: Router, dispatcher: object
) -> None:
    """A handler that cannot reach its broker fails start() with PushHandlerError."""
    settings = amqp_settings.model_copy(update={"port": free_port(), "push_timeout": 1})
    handler = AmqpServerPushHandler(settings, router, dispatcher)  # type: ignore[arg-type]
    with pytest.raises(PushHandlerError, match="cannot consume"):
        await handler.start(RecordingServer())
    assert not handler.is_consuming
    await handler.close()  # safe after a failed start
    await handler.close()  # and twice


async def test_a_delivery_handed_over_after_cancel_does_not_hang_the_receiver(
    amqp_settings: AmqpSettings, raw_channel: aio_pika.abc.AbstractChannel
) -> None:
    """aio-pika runs consumer callbacks as tasks, so a delivery can reach the receiver after
    cancel(): receive() gives what was taken and then [] again and again, never waits."""
    receiver = AmqpReceiver(amqp_settings, amqp_settings.queue_name, "node-1", per_node=False)
    await receiver.open()
    try:
        await _publish_raw(raw_channel, amqp_settings, b'{"topic":"acme/channel/1","data":1}')
        await eventually(
            lambda: not receiver._inbox.empty(), 10, "taken, not received yet", every=0.01
        )
        await receiver.cancel()
        late_queue = await raw_channel.declare_queue(exclusive=True)
        await raw_channel.default_exchange.publish(aio_pika.Message(b"{}"), late_queue.name)
        late = await late_queue.get(timeout=5)
        await receiver._on_message(late)  # the consumer callback, as aio-pika's late task calls it
        taken = []
        for _ in range(4):
            batch = await asyncio.wait_for(receiver.receive(), 2)
            taken.append(len(batch))
        assert taken[0] == 1 and taken[-2:] == [0, 0], taken
    finally:
        await receiver.close()
