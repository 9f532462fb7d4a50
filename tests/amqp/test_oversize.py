"""An AMQP push over the broker's ``max_message_size`` is refused at the pusher (issue 24, 4).

The server has no size limit of its own on the AMQP path: the broker's is the one on the way,
and with publisher confirms its refusal reaches the caller as ``PushFailed``.
"""

from __future__ import annotations

from collections.abc import Iterator

import aio_pika
import pytest

from gos_web_socket.app.exceptions import PushFailed
from gos_web_socket.app.transports.amqp.pusher import AmqpPusher
from gos_web_socket.settings.models import AmqpSettings
from tests.amqp.conftest import drain
from tests.support.rabbitmq import RabbitMQNode

BROKER_LIMIT = 1 << 20


@pytest.fixture
def small_broker_limit(rabbitmq: RabbitMQNode) -> Iterator[None]:
    """The run's broker with max_message_size at 1 MiB (for channels opened next), reset after."""

    def set_limit(value: str) -> None:
        done = rabbitmq.ctl("eval", f"application:set_env(rabbit, max_message_size, {value}).")
        assert done.returncode == 0, done.stderr

    set_limit(str(BROKER_LIMIT))
    try:
        yield
    finally:
        set_limit("134217728")  # RabbitMQ 3.10's default


async def test_a_push_over_the_brokers_limit_fails_naming_it_and_the_next_goes_through(
    small_broker_limit: None,
    pusher: AmqpPusher,
    amqp_settings: AmqpSettings,
    raw_channel: aio_pika.abc.AbstractChannel,
) -> None:
    """2 MB: PushFailed naming the broker's max_message_size; a small push after is queued."""
    with pytest.raises(PushFailed) as refused:
        await pusher.push("x" * 2_000_000, "acme_topic", {"room": "1"})
    message = str(refused.value)
    assert "max_message_size" in message and str(BROKER_LIMIT) in message, message
    await pusher.push({"after": 1}, "acme_topic", {"room": "1"})
    bodies = await drain(raw_channel, amqp_settings.queue_name)
    assert bodies == [b'{"topic":"acme/channel/1","data":{"after":1}}']
