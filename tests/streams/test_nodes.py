"""Stream mode with real server processes: any node recovers a client, a restarted node too."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gos_web_socket.app.testing import WampTestClient
from gos_web_socket.app.transports.amqp.pusher import AmqpPusher
from tests.ops.conftest import http_get
from tests.streams.nodes import Cluster
from tests.streams.recovery import RecoveringPeer
from tests.support.process import ServerProcess
from tests.support.rabbitmq import RabbitMQNode

CHANNEL = "acme/channel/1"


@pytest.fixture
async def cluster(rabbitmq: RabbitMQNode, tmp_path: Path) -> AsyncIterator[Cluster]:
    cluster = Cluster(rabbitmq, tmp_path)
    try:
        yield cluster
    finally:
        await cluster.stop()


async def push(pusher: AmqpPusher, start: int, stop: int) -> None:
    for n in range(start, stop):
        await pusher.push({"n": n}, "acme_topic", {"room": "1"})


OUTAGE = 30.0
"""Seconds the restarted node stays down (issue 17's must-show)."""


async def push_during(pusher: AmqpPusher, start: int, stop: int, seconds: float) -> None:
    """Pushes ``start``..``stop`` spread evenly over ``seconds``, in batches of ten."""
    batches = range(start, stop, 10)
    for first in batches:
        await push(pusher, first, min(first + 10, stop))
        await asyncio.sleep(seconds / len(batches))


async def test_a_client_away_for_500_pushes_recovers_on_either_node(cluster: Cluster) -> None:
    """Two nodes: clients away for 500 pushes come back to the same or the other node and get
    all 500 in order, no duplicate, recovered true, then the live ones."""
    a, b = await cluster.start("a"), await cluster.start("b")
    on_a = await RecoveringPeer.connect(a.ws_url, CHANNEL)
    on_b = await RecoveringPeer.connect(b.ws_url, CHANNEL)
    await on_a.report()
    await on_b.report()
    async with AmqpPusher(cluster.amqp(), cluster.router) as pusher:
        await push(pusher, 0, 10)
        last_a = (await on_a.read(10)).position
        last_b = (await on_b.read(10)).position
        assert last_a == last_b  # positions are the stream's: the same on every node
        on_a.close()
        on_b.close()
        watchers = [await RecoveringPeer.connect(node.ws_url, CHANNEL) for node in (a, b)]
        for watcher in watchers:
            await watcher.report()
        await push(pusher, 10, 510)
        for watcher in watchers:  # both nodes handled all 500 before the clients come back
            await watcher.read(500)
            watcher.close()
        back = {
            "same": await RecoveringPeer.connect(a.ws_url, CHANNEL, since=last_a),
            "other": await RecoveringPeer.connect(b.ws_url, CHANNEL, since=last_a),
        }
        reports = {name: await peer.report() for name, peer in back.items()}
        await push(pusher, 510, 520)
        for name, peer in back.items():
            got = await peer.read(510)
            assert reports[name]["recovered"] is True, name
            assert reports[name]["replayed"] == 500, name
            assert [p["n"] for p in got.payloads] == list(range(10, 520)), name
            peer.close()


async def test_a_restarted_node_delivers_nothing_twice_and_its_clients_recover(
    cluster: Cluster,
) -> None:
    """Node stopped for 30 s while pushes go on, then restarted: it resumes after its offset
    (nothing twice to a subscriber) and, from the history it refilled, its clients recover."""
    a = await cluster.start("a")
    client = await RecoveringPeer.connect(a.ws_url, CHANNEL)
    await client.report()
    async with AmqpPusher(cluster.amqp(), cluster.router) as pusher:
        await push(pusher, 0, 100)
        last = (await client.read(100)).position
        client.close()
        await a.stop()
        await push_during(pusher, 100, 300, seconds=OUTAGE)  # away; pushes keep coming
        a = await cluster.start("a")
        watcher = await RecoveringPeer.connect(a.ws_url, CHANNEL)
        await watcher.report()
        watched = watcher.state
        back = await RecoveringPeer.connect(a.ws_url, CHANNEL, since=last)
        report = await back.report()
        await push(pusher, 300, 310)
        got = await back.read(210)
        assert watched is not None
        while not watched.payloads or watched.payloads[-1]["n"] != 309:
            try:
                await watcher.read(len(watched.payloads) + 1, timeout=5)
            except TimeoutError:
                raise AssertionError(f"watcher saw {[p['n'] for p in watched.payloads]}") from None
    assert report["recovered"] is True  # replayed, or live if the node was still catching up
    assert [p["n"] for p in got.payloads] == list(range(100, 310))
    # A client that joined during the catch-up saw each push once, in order, with no gap (if
    # it joined during the fill, pushes read back follow its position too).
    seen = [p["n"] for p in watched.payloads]
    assert seen == list(range(seen[0], 310))
    back.close()
    watcher.close()


STREAM = "GOS_WEB_SOCKET__PUSHERS__AMQP__STREAM__"


async def away_for(cluster: Cluster, pusher: AmqpPusher, pushes: int) -> dict[str, object]:
    """Node a's client sees pushes 0..9 and leaves; ``pushes`` more follow, which a handles."""
    a = await cluster.start("a")
    client = await RecoveringPeer.connect(a.ws_url, CHANNEL)
    await client.report()
    await push(pusher, 0, 10)
    last = (await client.read(10)).position
    client.close()
    watcher = await RecoveringPeer.connect(a.ws_url, CHANNEL)
    await watcher.report()
    await push(pusher, 10, 10 + pushes)
    await watcher.read(pushes)
    watcher.close()
    assert last is not None
    return last


async def stream_reads(node: ServerProcess) -> float:
    """The node's gos_websocket_recovery_stream_reads_total."""
    _, body = await http_get(node.metrics_port, "/metrics")
    line = next(x for x in body.splitlines() if x.startswith(READS))
    return float(line.split()[-1])


READS = "gos_websocket_recovery_stream_reads_total"


async def test_a_node_started_later_reads_the_stream_back_for_a_recovery(
    cluster: Cluster,
) -> None:
    """A node that started after the client's position, holding only its last 100 pushes in
    history, serves all 500 missed by reading the stream back; pushes that arrive while it
    reads come after them: 500 in order, no duplicate, recovered true."""
    async with AmqpPusher(cluster.amqp(), cluster.router) as pusher:
        last = await away_for(cluster, pusher, 500)
        cluster.env("b")[f"{STREAM}FILL"] = "100"
        b = await cluster.start("b")
        live = asyncio.create_task(push_during(pusher, 510, 610, seconds=1.0))
        back = await RecoveringPeer.connect(b.ws_url, CHANNEL, since=last)
        report = await back.report()
        await live
        got = await back.read(600)
    assert report["recovered"] is True, report
    assert report["replayed"] >= 500, report  # and those live ones that came while it read
    assert [p["n"] for p in got.payloads] == list(range(10, 610))
    offsets = [p["offset"] for p in got.positions]
    assert offsets == sorted(set(offsets))
    assert await stream_reads(b) == 1
    back.close()


async def test_a_recovery_past_recover_max_is_reported_incomplete(cluster: Cluster) -> None:
    """stream.recover_max bounds a read: 500 missed on a node that holds 100 and may read 50
    back is told recovered false (reload), and gets the 100 its history has."""
    async with AmqpPusher(cluster.amqp(), cluster.router) as pusher:
        last = await away_for(cluster, pusher, 500)
        env = cluster.env("b")
        env[f"{STREAM}FILL"], env[f"{STREAM}RECOVER_MAX"] = "100", "50"
        b = await cluster.start("b")
        back = await RecoveringPeer.connect(b.ws_url, CHANNEL, since=last)
        report = await back.report()
        got = await back.read(100)  # replayed, or read back by the node's fill after the report
    assert report["recovered"] is False, report
    assert [p["n"] for p in got.payloads] == list(range(410, 510))
    assert await stream_reads(b) == 0
    back.close()


async def test_clients_recovering_together_share_stream_reads(cluster: Cluster) -> None:
    """Thirty clients coming back at once from positions older than the node's history each
    get all they missed, through far fewer stream reads than clients."""
    async with AmqpPusher(cluster.amqp(), cluster.router) as pusher:
        last = await away_for(cluster, pusher, 300)
        cluster.env("b")[f"{STREAM}FILL"] = "50"
        b = await cluster.start("b")
        peers = await asyncio.gather(
            *(RecoveringPeer.connect(b.ws_url, CHANNEL, since=last) for _ in range(30))
        )
        reports = await asyncio.gather(*(peer.report() for peer in peers))
        assert all(report["recovered"] is True for report in reports), (reports, b.output)
        states = await asyncio.gather(*(peer.read(300) for peer in peers))
    for state in states:
        assert [p["n"] for p in state.payloads] == list(range(10, 310))
    assert await stream_reads(b) <= 5  # 2 here when idle: the first client's, then the rest
    for peer in peers:
        peer.close()


async def test_a_wamp1_client_recovers_from_the_stream_through_the_history_rpc(
    cluster: Cluster,
) -> None:
    """WAMP v1's gos/history on a node that started later reads the stream back too: all 200
    missed, in order, recovered true."""
    async with AmqpPusher(cluster.amqp(), cluster.router) as pusher:
        last = await away_for(cluster, pusher, 200)
        cluster.env("b")[f"{STREAM}FILL"] = "20"
        b = await cluster.start("b")
        client = await WampTestClient.connect(b.ws_url)
        client.subscribe(CHANNEL)
        answer: Any = await client.call("gos/history", CHANNEL, last)
        await client.close()
    assert answer["recovered"] is True
    assert [p["data"]["n"] for p in answer["publications"]] == list(range(10, 210))
    assert await stream_reads(b) == 1
