"""``queue_type: quorum``: replicated push queues, dead-lettering and delivery limits on them."""

from __future__ import annotations

import aio_pika
import pytest
from pydantic import ValidationError

from gos_web_socket.app.transports.amqp.pusher import AmqpPusher
from gos_web_socket.settings.models import AmqpSettings
from tests.amqp.conftest import RecordingServer, StartHandler, dead_letters
from tests.support.rabbitmq import RabbitMQNode
from tests.support.waiting import eventually


def queue_type(rabbitmq: RabbitMQNode, name: str) -> str:
    out = rabbitmq.ctl("list_queues", "-q", "--no-table-headers", "name", "type").stdout
    types = dict(line.split()[:2] for line in out.splitlines() if len(line.split()) >= 2)
    return types[name]


@pytest.mark.parametrize("mode", ["shared", "per_node"])
async def test_quorum_queue_delivers_and_dead_letters(
    mode: str,
    start_handler: StartHandler,
    amqp_settings: AmqpSettings,
    rabbitmq: RabbitMQNode,
    raw_channel: aio_pika.abc.AbstractChannel,
) -> None:
    """The push queue is declared quorum (with a delivery limit): a push arrives, a push its
    topic refuses goes to the dead-letter queue."""
    update = {"queue_type": "quorum", "delivery_limit": 5, "queue_mode": mode}
    server = RecordingServer()
    handler = await start_handler(server, **update)
    assert queue_type(rabbitmq, handler.queue_name) == "quorum"
    assert queue_type(rabbitmq, amqp_settings.dead_letter_queue) == "quorum"
    assert not handler.amqp.adopted
    settings = amqp_settings.model_copy(update=update)
    async with AmqpPusher(settings, handler.router) as pusher:
        await pusher.push({"n": 1}, "acme_topic", {"room": "1"})
        await pusher.push({"n": 2}, "plain_topic", {"room": "1"})  # its topic cannot take it
    await eventually(lambda: server.counts() == {1: 1}, within=10, every=0.01)
    dead = await dead_letters(raw_channel, settings.dead_letter_queue, within=6)
    assert len(dead) == 1 and b'"n":2' in dead[0].replace(b" ", b"")


async def test_an_existing_classic_queue_is_adopted_when_quorum_is_asked(
    start_handler: StartHandler,
    amqp_settings: AmqpSettings,
    rabbitmq: RabbitMQNode,
    raw_channel: aio_pika.abc.AbstractChannel,
) -> None:
    """GOS's classic queue already there: consumed as it is, pushes still arrive."""
    await raw_channel.declare_queue(amqp_settings.queue_name, durable=True)
    server = RecordingServer()
    handler = await start_handler(server, queue_type="quorum")
    assert handler.amqp.adopted
    assert queue_type(rabbitmq, handler.queue_name) == "classic"
    async with AmqpPusher(
        amqp_settings.model_copy(update={"queue_type": "quorum"}), handler.router
    ) as pusher:
        await pusher.push({"n": 1}, "acme_topic", {"room": "1"})
    await eventually(lambda: server.counts() == {1: 1}, within=10, every=0.01)


async def test_an_existing_classic_dead_letter_queue_is_kept_when_quorum_is_asked(
    start_handler: StartHandler,
    amqp_settings: AmqpSettings,
    rabbitmq: RabbitMQNode,
    raw_channel: aio_pika.abc.AbstractChannel,
) -> None:
    """A classic dead-letter queue from before queue_type quorum: kept as it is, the new push
    queue is quorum (not adopted), and a refused push is dead-lettered into the old queue."""
    await raw_channel.declare_queue(amqp_settings.dead_letter_queue, durable=True)
    server = RecordingServer()
    handler = await start_handler(server, queue_type="quorum")
    assert not handler.amqp.adopted
    assert queue_type(rabbitmq, handler.queue_name) == "quorum"
    assert queue_type(rabbitmq, amqp_settings.dead_letter_queue) == "classic"
    settings = amqp_settings.model_copy(update={"queue_type": "quorum"})
    async with AmqpPusher(settings, handler.router) as pusher:
        await pusher.push({"n": 1}, "acme_topic", {"room": "1"})
        await pusher.push({"n": 2}, "plain_topic", {"room": "1"})  # its topic cannot take it
    await eventually(lambda: server.counts() == {1: 1}, within=10, every=0.01)
    dead = await dead_letters(raw_channel, amqp_settings.dead_letter_queue, within=6)
    assert len(dead) == 1 and b'"n":2' in dead[0].replace(b" ", b"")


def test_a_delivery_limit_needs_a_quorum_queue() -> None:
    """delivery_limit on a classic queue is refused, naming what is allowed."""
    with pytest.raises(ValidationError, match="delivery_limit 5 needs queue_type quorum"):
        AmqpSettings(delivery_limit=5)
