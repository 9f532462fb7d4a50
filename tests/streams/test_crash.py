"""Crash accounting in stream mode (issue #29): a node SIGKILLed mid-backlog loses nothing for
a client in a history route, not even pushes acked while their frames were still in the
process's buffers."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gos_web_socket.app.transports.amqp.pusher import AmqpPusher
from tests.streams.nodes import Cluster
from tests.streams.recovery import RecoveringPeer, Subscribed
from tests.support.process import ServerProcess
from tests.support.rabbitmq import RabbitMQNode

CHANNEL = "acme/channel/1"
BACKLOG = 1000
"""The route's history size (tests/streams/recovery.py): a client that missed more than its route
keeps is told ``recovered: false`` (reload), by design, so the backlog fits what it keeps."""


@pytest.fixture
async def cluster(rabbitmq: RabbitMQNode, tmp_path: Path) -> AsyncIterator[Cluster]:
    cluster = Cluster(rabbitmq, tmp_path)
    try:
        yield cluster
    finally:
        await cluster.stop()


async def read_what_came(client: RecoveringPeer) -> None:
    """Every EVENT the client still gets from a killed node (what the kernel had sent)."""
    assert client.state is not None
    while True:
        try:
            await client.read(len(client.state.payloads) + 1, timeout=1.0)
        except Exception:  # the connection is gone, or nothing more came
            return


async def push_backlog(pusher: AmqpPusher) -> None:
    """``BACKLOG`` pushes ``{"n": 0..}`` to the test channel, 200 confirmed at a time."""
    for start in range(0, BACKLOG, 200):
        await asyncio.gather(
            *(pusher.push({"n": n}, "acme_topic", {"room": "1"}) for n in range(start, start + 200))
        )


async def killed_mid_backlog(
    node: ServerProcess, client: RecoveringPeer, pusher: AmqpPusher, after: int
) -> Subscribed:
    """Push the backlog and SIGKILL ``node`` once ``client`` read ``after`` of it; once every
    push is confirmed and what still came is read, the client's state (with its position)."""
    producing = asyncio.create_task(push_backlog(pusher))
    try:
        await client.read(after, timeout=30)
        assert node.process is not None
        node.signal(signal.SIGKILL)
        await node.wait()
    finally:
        await asyncio.wait_for(producing, 120)  # every push confirmed
    await read_what_came(client)
    state = client.state
    assert state is not None and state.position is not None
    return state


async def test_a_node_sigkilled_mid_backlog_leaves_nothing_missing_for_a_history_client(
    cluster: Cluster,
) -> None:
    """1,000 confirmed pushes, the node SIGKILLed after its subscriber saw 500, started again:
    the subscriber back with its last position gets every other push, each offset once."""
    a = await cluster.start("a")
    client = await RecoveringPeer.connect(a.ws_url, CHANNEL)
    await client.report()
    async with AmqpPusher(cluster.amqp(), cluster.router) as pusher:
        first = await killed_mid_backlog(a, client, pusher, 500)
    seen = {p["n"] for p in first.payloads}
    assert 500 <= len(seen) < BACKLOG  # killed mid-drain
    client.close()

    a = await cluster.start("a")
    back = await RecoveringPeer.connect(a.ws_url, CHANNEL, since=first.position)
    report = await back.report(timeout=30)
    state = back.state
    assert state is not None
    while len(seen | {p["n"] for p in state.payloads}) < BACKLOG:
        await back.read(len(state.payloads) + 1, timeout=30)
    back.close()
    assert report["recovered"] is True
    offsets = [p["offset"] for p in first.positions + state.positions]
    by_offset = dict(zip(offsets, [p["n"] for p in first.payloads + state.payloads], strict=True))
    assert sorted(by_offset.values()) == list(range(BACKLOG))  # every push, once by position
    again = len(offsets) - len(set(offsets))  # delivered twice; a client drops them by position
    print(
        f"\nstream node SIGKILL: {len(seen)} seen before, {len(state.payloads)} after the "
        f"restart ({again} repeated positions), missing 0"
    )
