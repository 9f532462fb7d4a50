"""Presence across two nodes on one RabbitMQ: one answer on both, a SIGKILLed node's users
leave within the lease, exactly once on the backend queue."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gos_web_socket.app.testing import WampTestClient
from tests.presence.conftest import config_file, presence_server, shared_presence, token
from tests.presence.test_workers import ASKED_EVERY, answer, read_for
from tests.support.process import ServerProcess, server_env
from tests.support.rabbitmq import RabbitMQNode
from tests.support.waiting import eventually, settles
from tests.workers.conftest import until_ready

ROOM = "acme/chat/7"
LEASE = 3.0
SLACK = 3.0
"""Seconds a loaded machine adds to detection (polling, scheduling)."""


@pytest.fixture
async def nodes(
    rabbitmq: RabbitMQNode, tmp_path: Path
) -> AsyncIterator[tuple[list[ServerProcess], str]]:
    """Two single-process nodes sharing presence over the run's broker; the events queue."""
    presence, queue = shared_presence(0.2, LEASE)
    config = config_file(tmp_path, presence)
    servers = [
        await ServerProcess(server_env(rabbitmq), "--config", str(config)).start() for _ in range(2)
    ]
    try:
        for server in servers:
            await until_ready(server)
        yield servers, queue
    finally:
        for server in servers:
            await server.stop()


async def test_nodes_agree_and_a_killed_node_leaves_once(
    nodes: tuple[list[ServerProcess], str], rabbitmq: RabbitMQNode
) -> None:
    """Users with tabs on both nodes and on one: both answer the same; after SIGKILL of node
    B its only-there users leave A's answer within the lease, once each on the queue."""
    (a, b), queue = nodes
    layout = {"u1": (a, b), "u2": (a,), "u3": (b,), "u4": (b, b), "u5": (a, a, b)}
    clients: dict[str, list[tuple[ServerProcess, WampTestClient]]] = {}
    for user, places in layout.items():
        for server in places:
            client = await WampTestClient.connect(f"{server.ws_url}?token={token(user)}")
            client.subscribe(ROOM)
            clients.setdefault(user, []).append((server, client))
    expected = {user: len(places) for user, places in layout.items()}
    on_a = clients["u2"][0][1]
    on_b = clients["u3"][0][1]

    async def both_agree() -> bool:
        return await answer(on_a) == expected and await answer(on_b) == expected

    await settles(both_agree, within=15.0, every=ASKED_EVERY, what="both nodes answer every member")
    b.signal(signal.SIGKILL)
    await b.wait()
    remaining = {u: sum(1 for s, _ in tabs if s is a) for u, tabs in clients.items()}
    remaining = {u: n for u, n in remaining.items() if n}
    loop = asyncio.get_running_loop()
    killed_at = loop.time()

    async def b_gone() -> bool:
        return await answer(on_a) == remaining

    await settles(
        b_gone,
        within=LEASE * 6,
        every=ASKED_EVERY,
        what="node B's members gone from node A's answer",
    )
    took = loop.time() - killed_at
    bound = LEASE + LEASE / 3 + SLACK  # the lease, one heartbeat period, a loaded machine
    assert took <= bound, f"B's members listed {took:.1f} s after its death (bound {bound} s)"
    events = await read_for(rabbitmq.url, queue, 3.0)
    left = Counter(e.user_id for e in events if e.kind.endswith(".left") and e.channel == ROOM)
    assert dict(left) == {"u3": 1, "u4": 1}
    for tabs in clients.values():
        for server, client in tabs:
            if server is a:
                await client.close()


async def test_presence_is_stale_during_a_broker_outage(rabbitmq: RabbitMQNode) -> None:
    """While the broker is away a node answers what it knew, marked stale; then fresh again."""
    amqp = {"amqp": {"enabled": False, "port": rabbitmq.port, "reconnect_interval": 0.5}}
    exchange = f"px-{uuid.uuid4().hex[:8]}"
    nodes = {"enabled": True, "exchange": exchange}
    async with presence_server({"nodes": nodes, "lease": LEASE}, pushers=amqp) as node:
        presence = node.presence
        client = await node.client("42")
        client.subscribe(ROOM)
        await eventually(lambda: not presence.stale, 20.0, "linked to the broker")
        await asyncio.to_thread(rabbitmq.stop_app)
        try:
            await eventually(lambda: presence.stale, 20.0, "stale without the broker")
            found = await client.call("gos/presence", ROOM)
            assert found["stale"] is True and list(found["users"]) == ["42"]
        finally:
            await asyncio.to_thread(rabbitmq.start_app)
        await eventually(lambda: not presence.stale, 60.0, "fresh again")
        assert (await client.call("gos/presence", ROOM))["stale"] is False


async def test_a_graceful_stop_sends_its_leaves_at_once(rabbitmq: RabbitMQNode) -> None:
    """A node that stops gracefully takes its members out of the others' presence at once,
    well within the lease, and its user's leave is sent once (by the user's emitter, A or B),
    with no second one from A after the lease would have expired B."""
    amqp = {"amqp": {"enabled": False, "port": rabbitmq.port, "reconnect_interval": 0.5}}
    nodes = {"enabled": True, "exchange": f"px-{uuid.uuid4().hex[:8]}"}
    lease = 9.0
    settings = {"nodes": nodes, "lease": lease}
    async with presence_server(settings, pushers=amqp) as a:
        async with presence_server(settings, pushers=amqp) as b:
            here, there = await a.client("41"), await b.client("42")
            here.subscribe(ROOM)
            there.subscribe(ROOM)
            await eventually(lambda: a.presence.counts(ROOM) == (2, 2), 20.0, "A sees B's user")
            await eventually(lambda: b.presence.counts(ROOM) == (2, 2), 20.0, "B sees A's user")
        loop = asyncio.get_running_loop()
        stopped = loop.time()
        await eventually(lambda: a.presence.counts(ROOM) == (1, 1), 5.0, "B's user gone from A")
        assert loop.time() - stopped < 5.0
        await asyncio.sleep(max(0.0, stopped + lease + lease / 3 - loop.time()))
        assert a.presence.lifecycle.peers == {}, "B's bye took it out of A's live set"
        assert a.recorder.of("left") + b.recorder.of("left") == [("42", ROOM)]
