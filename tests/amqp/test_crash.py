"""Crash accounting on the shared queue (issue #29); ten trials: ``python -m tests.amqp.crash``."""

from __future__ import annotations

from tests.amqp.crash import trial
from tests.support.rabbitmq import RabbitMQNode


async def test_pushes_a_sigkilled_server_had_not_acked_reach_the_next_ones_subscriber(
    rabbitmq: RabbitMQNode,
) -> None:
    """2,000 confirmed pushes, the server SIGKILLed after its subscriber saw 500: every push it
    had not acked reaches the next server's subscriber (two trials)."""
    for _ in range(2):
        settings = rabbitmq.amqp_settings(push_timeout=30, reconnect_interval=0.5)
        result = await trial(rabbitmq, settings)
        print(f"\n{result.line()}")
        assert result.left > 0 and result.seen_first >= 500  # killed mid-drain
        assert result.lost_unacked == 0
