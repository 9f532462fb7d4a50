"""Crash accounting on the shared queue (issue #29); ten trials: ``python -m tests.amqp.crash``."""

from __future__ import annotations

from pathlib import Path

from gos_web_socket.app.transports.amqp.pusher import AmqpPusher
from tests.amqp.crash import trial
from tests.streams.nodes import Cluster
from tests.streams.recovery import RecoveringPeer
from tests.streams.test_crash import BACKLOG, CHANNEL, killed_mid_backlog
from tests.support.rabbitmq import RabbitMQNode
from tests.support.waiting import eventually


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


async def test_a_history_client_back_after_a_classic_server_was_sigkilled_is_told_to_reload(
    rabbitmq: RabbitMQNode, tmp_path: Path
) -> None:
    """Shared classic queue, a route with history: the restarted server hands the requeued
    pushes to nobody before the client is back, and the client, back with its last position,
    is told ``recovered: false`` (the memory history died with the process), not replayed."""
    cluster = Cluster(rabbitmq, tmp_path)
    cluster.base["GOS_WEB_SOCKET__PUSHERS__AMQP__QUEUE_MODE"] = "shared"
    settings = cluster.amqp().model_copy(update={"queue_mode": "shared"})
    try:
        a = await cluster.start("a")
        client = await RecoveringPeer.connect(a.ws_url, CHANNEL)
        await client.report()
        async with AmqpPusher(settings, cluster.router) as pusher:
            first = await killed_mid_backlog(a, client, pusher, 300)
        client.close()
        await eventually(
            lambda: rabbitmq.queue_counts(settings.queue_name)[1] == 0, within=30, every=0.25
        )
        left, _ = rabbitmq.queue_counts(settings.queue_name)
        assert left > 0 and len(first.payloads) + left >= BACKLOG  # killed mid-drain

        a = await cluster.start("a")  # consumes at once: the backlog goes to nobody
        await eventually(
            lambda: rabbitmq.queue_counts(settings.queue_name) == (0, 0), within=60, every=0.5
        )
        back = await RecoveringPeer.connect(a.ws_url, CHANNEL, since=first.position)
        report = await back.report(timeout=30)
        back.close()
        assert report["recovered"] is False
        assert back.state is not None and back.state.payloads == []
    finally:
        await cluster.stop()
