"""Chaos on a three-node cluster: the queue leader's node SIGKILLed mid-run (issue #29)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from gos_web_socket.app.events import EventDispatcher
from gos_web_socket.app.exceptions import PushFailed
from gos_web_socket.app.transports.amqp.handler import AmqpServerPushHandler
from gos_web_socket.app.transports.amqp.pusher import AmqpPusher
from gos_web_socket.app.transports.supervisor import Supervisor
from gos_web_socket.settings.models import AmqpSettings, StreamSettings
from tests.amqp.conftest import RecordingServer, make_router
from tests.cluster.chaos import run
from tests.support.cluster import RabbitMQCluster
from tests.support.waiting import eventually

TOTAL = 2000
"""Small while the machine is shared (the issue asks 20,000)."""


def cluster_settings(cluster: RabbitMQCluster, first: int, **overrides: object) -> AmqpSettings:
    """Settings on every node, trying node ``first`` first."""
    nodes = cluster.addresses[first:] + cluster.addresses[:first]
    values: dict[str, object] = {
        "enabled": True,
        "nodes": nodes,
        "login": "guest",
        "password": "guest",
        "push_timeout": 90,
        "reconnect_interval": 0.5,
        **overrides,
    }
    return AmqpSettings(**values)  # type: ignore[arg-type]


def quorum_names(tag: str) -> dict[str, object]:
    """Queue, exchange and dead-letter names no other test uses, and ``queue_type: quorum``."""
    return {
        "queue_name": f"q_{tag}",
        "exchange_name": f"x_{tag}",
        "dead_letter_exchange": f"dlx_{tag}",
        "dead_letter_queue": f"dlq_{tag}",
        "queue_type": "quorum",
    }


async def run_with_fault(
    cluster: RabbitMQCluster,
    mode: str,
    tmp_path: Path,
    fault: Callable[[AmqpServerPushHandler], Awaitable[None]],
) -> int:
    """Two pushers send ``TOTAL`` pushes to a supervised handler; ``fault(handler)`` runs once
    a fifth of them arrived. Every confirmed push must reach the topic exactly once. Returns
    the handler's restarts (by the supervisor)."""
    names = {
        **quorum_names(uuid.uuid4().hex[:8]),
        "queue_mode": mode,
        "stream": StreamSettings(state_dir=tmp_path, probe_timeout=0.3),
    }
    router, server = make_router(), RecordingServer()
    handler = AmqpServerPushHandler(
        cluster_settings(cluster, 1, **names), router, EventDispatcher()
    )
    supervisor = Supervisor({"amqp": handler}, server)
    await supervisor.start()
    pushers = [AmqpPusher(cluster_settings(cluster, i, **names), router) for i in (0, 2)]
    confirmed: set[int] = set()
    failed: list[int] = []

    async def one(pusher: AmqpPusher, n: int) -> None:
        try:
            await pusher.push({"n": n}, "acme_topic", {"room": "1"})
        except PushFailed:
            failed.append(n)
        else:
            confirmed.add(n)

    async def produce(which: int) -> None:
        for start in range(which, TOTAL, 40):  # 20 in flight per pusher
            await asyncio.gather(
                *(one(pushers[which], n) for n in range(start, min(start + 40, TOTAL), 2))
            )

    try:
        await eventually(lambda: handler.is_consuming, within=30, every=0.01)
        producing = [asyncio.create_task(produce(which)) for which in (0, 1)]
        await eventually(lambda: len(server.received) >= TOTAL // 5, within=120, every=0.01)
        await fault(handler)
        await asyncio.wait_for(asyncio.gather(*producing), 300)
        await eventually(lambda: confirmed <= set(server.counts()), within=120, every=0.01)
        await eventually(lambda: handler.is_consuming, within=30, every=0.01)
    finally:
        for pusher in pushers:
            await pusher.close()
        await supervisor.close()
    counts = server.counts()
    print(
        f"\ncluster chaos ({mode}): {len(confirmed)} confirmed, {len(failed)} PushFailed, "
        f"{len(counts)} reached the topic, {handler.stats.deduplicated} repeats dropped, "
        f"handler restarts {supervisor.states['amqp'].restarts}"
    )
    assert len(confirmed) + len(failed) == TOTAL
    assert confirmed <= set(counts)  # no confirmed push lost
    assert all(count == 1 for count in counts.values())  # exactly once at the topic
    return supervisor.states["amqp"].restarts


@pytest.mark.timeout(600)
@pytest.mark.parametrize("mode", ["shared", "per_node", "stream"])
async def test_leader_node_sigkilled_mid_run_loses_no_confirmed_push(
    mode: str, rabbitmq_cluster: RabbitMQCluster, tmp_path: Path
) -> None:
    """Quorum queue (shared, per_node) or stream, two pushers, 2,000 pushes; the node holding
    the leader SIGKILLed mid-run and started 10 s later: every confirmed push reached the topic
    exactly once, every other one raised PushFailed, and the handler went on by itself."""

    async def kill_the_leader(handler: AmqpServerPushHandler) -> None:
        leader = await asyncio.to_thread(rabbitmq_cluster.leader_of, handler.queue_name)
        await asyncio.to_thread(leader.kill)
        await asyncio.sleep(10)  # the scenario: the node is back 10 s later
        await asyncio.to_thread(leader.start, 180)

    await run_with_fault(rabbitmq_cluster, mode, tmp_path, kill_the_leader)


@pytest.mark.timeout(600)
async def test_a_rolling_restart_of_all_three_nodes_loses_no_confirmed_push(
    rabbitmq_cluster: RabbitMQCluster, tmp_path: Path
) -> None:
    """Quorum shared queue, 2,000 pushes while each node in turn is stopped and started
    (an upgrade): every confirmed push reached the topic exactly once."""

    async def rolling_restart(handler: AmqpServerPushHandler) -> None:
        for node in rabbitmq_cluster.nodes:
            await asyncio.to_thread(node.stop_app)
            await asyncio.to_thread(node.start_app)

    restarts = await run_with_fault(rabbitmq_cluster, "shared", tmp_path, rolling_restart)
    assert restarts >= 1  # the handler's node was among those restarted: it moved


@pytest.mark.timeout(600)
async def test_the_handlers_own_node_sigkilled_mid_run_loses_no_confirmed_push(
    rabbitmq_cluster: RabbitMQCluster, tmp_path: Path
) -> None:
    """Quorum shared queue, 2,000 pushes; the node the handler consumes from SIGKILLed mid-run
    and started 10 s later: the handler lost its consumer and was restarted, and every
    confirmed push reached the topic exactly once. (It cannot consume elsewhere until the node
    is back when that node is the home of a classic dead-letter queue, NOT_FOUND on declare;
    with queue_type quorum the dead-letter queue is quorum too: test_dead_letters.py.)"""
    killed: list[str] = []

    async def kill_the_handlers_node(handler: AmqpServerPushHandler) -> None:
        where = handler.amqp.where
        node = next(n for n in rabbitmq_cluster.nodes if f"127.0.0.1:{n.port}" == where)
        killed.append(where)
        await asyncio.to_thread(node.kill)
        try:
            await eventually(lambda: not handler.is_consuming, 30, "it was disrupted", every=0.01)
            await asyncio.sleep(10)  # the scenario: the node is back 10 s later
        finally:
            await asyncio.to_thread(node.start, 180)

    restarts = await run_with_fault(rabbitmq_cluster, "shared", tmp_path, kill_the_handlers_node)
    assert killed and restarts >= 1


@pytest.mark.timeout(900)
@pytest.mark.parametrize("mode", ["stream", "per_node"])
async def test_two_server_processes_keep_every_push_through_a_leader_kill_and_a_rolling_restart(
    mode: str, rabbitmq_cluster: RabbitMQCluster, tmp_path: Path
) -> None:
    """The issue's must-show run, small (tests/cluster/chaos.py runs 20,000): two server
    processes with workers: 2, four pushers (two async, two push_sync in background mode),
    2,000 pushes spread over the faults; the leader's node SIGKILLed and back 10 s later, then
    each node's VM stopped and started: each of the eight subscribers saw every confirmed push
    once by position, every other push was reported failed, no server or worker restarted."""
    tally = await run(rabbitmq_cluster, mode, 2000, 30, tmp_path)
    print("\n" + "\n".join(tally.lines))
    assert len(tally.confirmed) + len(tally.failed) == tally.pushed == 2000
    assert tally.confirmed, "no push was confirmed: nothing to count"
    assert tally.pushing_at_faults[0], "the pushers had finished before the leader was killed"
    assert tally.missing == 0 and tally.twice == 0
    assert tally.worker_restarts == 0 and tally.servers_alive
