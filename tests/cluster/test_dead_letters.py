"""The dead-letter queue follows ``queue_type``: quorum lets a handler move off a dead node."""

from __future__ import annotations

import asyncio
import uuid

import aio_pika

from gos_web_socket.app.events import EventDispatcher
from gos_web_socket.app.transports.amqp.handler import AmqpServerPushHandler
from gos_web_socket.app.transports.amqp.pusher import AmqpPusher
from gos_web_socket.app.transports.supervisor import Supervisor
from tests.amqp.conftest import RecordingServer, dead_letters, make_router
from tests.cluster.test_chaos import cluster_settings, quorum_names
from tests.support.cluster import RabbitMQCluster
from tests.support.waiting import eventually


def queue_types(cluster: RabbitMQCluster, node: int) -> dict[str, str]:
    """``{queue: type}`` as node ``node`` lists them."""
    out = cluster.nodes[node].ctl("list_queues", "-q", "--no-table-headers", "name", "type")
    return dict(line.split()[:2] for line in out.stdout.splitlines() if len(line.split()) >= 2)


async def test_a_quorum_dead_letter_queue_does_not_hold_the_handler_on_a_dead_node(
    rabbitmq_cluster: RabbitMQCluster,
) -> None:
    """queue_type quorum: the dead-letter queue is quorum too, so with the node that declared
    it SIGKILLed the handler declares everything on another node and consumes there, and a
    push its topic refuses is dead-lettered, all before that node is back."""
    tag = uuid.uuid4().hex[:8]
    names = quorum_names(tag)
    router, server = make_router(), RecordingServer()
    handler = AmqpServerPushHandler(
        cluster_settings(rabbitmq_cluster, 0, **names), router, EventDispatcher()
    )
    supervisor = Supervisor({"amqp": handler}, server)
    await supervisor.start()
    node = rabbitmq_cluster.nodes[0]
    try:
        await eventually(lambda: handler.is_consuming, within=30, every=0.01)
        assert handler.amqp.where == f"127.0.0.1:{node.port}"  # it declared the dead letters
        types = await asyncio.to_thread(queue_types, rabbitmq_cluster, 1)
        assert types[f"dlq_{tag}"] == types[f"q_{tag}"] == "quorum"
        await asyncio.to_thread(node.kill)
        await eventually(lambda: not handler.is_consuming, within=30, every=0.01)
        await eventually(
            lambda: handler.is_consuming, 60, "consuming while the node is still down", every=0.01
        )
        assert handler.amqp.where != f"127.0.0.1:{node.port}"
        async with AmqpPusher(cluster_settings(rabbitmq_cluster, 1, **names), router) as pusher:
            await pusher.push({"n": 1}, "acme_topic", {"room": "1"})
            await pusher.push({"n": 2}, "plain_topic", {"room": "1"})  # refused by its topic
        await eventually(lambda: server.counts() == {1: 1}, within=30, every=0.01)
        url = f"amqp://guest:guest@127.0.0.1:{rabbitmq_cluster.nodes[1].port}/"
        async with await aio_pika.connect(url) as connection:
            channel = await connection.channel()
            dead = await dead_letters(channel, f"dlq_{tag}", within=12)
        assert len(dead) == 1 and b'"n":2' in dead[0].replace(b" ", b"")
    finally:
        await supervisor.close()
        await asyncio.to_thread(node.start, 180)
