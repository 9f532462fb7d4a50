"""History and recovery without a broker (memory pushes): positions are this process's."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gos_web_socket import containers
from gos_web_socket.app.demo import AcmeTopic
from gos_web_socket.app.metrics import ServerMetrics
from gos_web_socket.app.position import LOCAL
from gos_web_socket.app.router import Router, load_routes_from_mapping
from gos_web_socket.app.testing import WampTestClient
from gos_web_socket.app.transports.memory import MemoryDelivery
from gos_web_socket.app.transports.pusher import Pusher
from gos_web_socket.app.transports.zmq.pusher import ZmqPusher
from gos_web_socket.settings.models import ZmqSettings
from gos_web_socket.testing import memory_pusher, use_memory_pusher
from tests.streams.recovery import ROUTES, RecoveringPeer
from tests.support.process import ServerProcess, server_env, setting
from tests.support.server import make_container, service, url_of

CHANNEL = "acme/channel/1"


@pytest.fixture
async def server() -> AsyncIterator[containers.Container]:
    """The demo topic on routes with history, pushed to in memory."""
    container = make_container(topics=[AcmeTopic()], routes=ROUTES)
    use_memory_pusher(container)
    async with service(container, "gos_web_socket.runtime"):
        yield container


def url(container: containers.Container) -> str:
    return url_of(service(container, "gos_web_socket.server"))


async def push(pusher: Pusher, start: int, stop: int, room: str = "1") -> None:
    for n in range(start, stop):
        await pusher.push({"n": n}, "acme_topic", {"room": room})


async def seen_and_gone(server: containers.Container, pusher: Pusher, pushes: int) -> Any:
    """A client sees pushes 0..``pushes``-1 of CHANNEL and leaves: the last position it saw."""
    first = await RecoveringPeer.connect(url(server), CHANNEL)
    await first.report()
    await push(pusher, 0, pushes)
    last = (await first.read(pushes)).position
    first.close()
    return last


async def test_a_client_away_for_500_pushes_gets_all_then_live_ones(
    server: containers.Container,
) -> None:
    """Back with its last position, a v2 client gets the 500 it missed in order, then live."""
    pusher = memory_pusher(server)
    first = await RecoveringPeer.connect(url(server), CHANNEL)
    assert (await first.report())["recovered"] is True
    await push(pusher, 0, 10)
    seen = await first.read(10)
    assert [p["n"] for p in seen.payloads] == list(range(10))
    last = seen.position
    first.close()
    await push(pusher, 10, 510)
    back = await RecoveringPeer.connect(url(server), CHANNEL, since=last)
    report = await back.report()
    await push(pusher, 510, 520)
    got = await back.read(510)
    assert report == {"recovered": True, "position": got.positions[499], "replayed": 500}
    assert [p["n"] for p in got.payloads] == list(range(10, 520))
    offsets = [p["offset"] for p in got.positions]
    assert offsets == sorted(set(offsets))
    back.close()


async def test_clients_replaying_the_same_pushes_get_the_same_events(
    server: containers.Container,
) -> None:
    """Two clients back from one position get byte-for-byte the same replayed EVENTs (one
    publication id each): a replay is framed once, not once per client."""
    pusher = memory_pusher(server)
    stays = await RecoveringPeer.connect(url(server), CHANNEL)  # the topic (its id) lives on
    await stays.report()
    await push(pusher, 0, 1)
    last = (await stays.read(1)).position
    await push(pusher, 1, 6)
    replays = []
    for _ in range(2):
        back = await RecoveringPeer.connect(url(server), CHANNEL, since=last)
        replays.append([await back.peer.receive() for _ in range(5)])
        back.close()
    assert [event[4] for event in replays[0]] == [[{"n": n}] for n in range(1, 6)]
    assert replays[0] == replays[1]
    assert len({event[2] for event in replays[0]}) == 5
    stays.close()


async def test_a_client_with_nothing_missed_is_told_it_recovered(
    server: containers.Container,
) -> None:
    """Recovering from the current position replays nothing and reports complete."""
    pusher = memory_pusher(server)
    last = await seen_and_gone(server, pusher, 3)
    back = await RecoveringPeer.connect(url(server), CHANNEL, since=last)
    assert await back.report() == {"recovered": True, "position": last, "replayed": 0}
    back.close()


async def test_a_history_too_short_is_reported_incomplete(
    server: containers.Container,
) -> None:
    """Away for more pushes than the channel keeps: the last 1,000 come, recovered is false."""
    pusher = memory_pusher(server)
    last = await seen_and_gone(server, pusher, 1)
    await push(pusher, 1, 1201)
    back = await RecoveringPeer.connect(url(server), CHANNEL, since=last)
    report = await back.report()
    assert report["recovered"] is False and report["replayed"] == 1000
    assert [p["n"] for p in back.state.payloads] == list(range(201, 1201))  # type: ignore[union-attr]
    back.close()


async def test_another_epoch_is_reported_incomplete(server: containers.Container) -> None:
    """A position from another epoch (another process, a recreated stream) is not recovered."""
    pusher = memory_pusher(server)
    await push(pusher, 0, 5)
    back = await RecoveringPeer.connect(url(server), CHANNEL, since={"epoch": "x", "offset": 3})
    report = await back.report()
    assert report["recovered"] is False and report["replayed"] == 0
    back.close()


async def test_a_restarted_process_reports_incomplete(tmp_path: Path) -> None:
    """After a real server process restarts (ZeroMQ pushes), an old position is not recovered."""
    routing = tmp_path / "routing.yaml"
    routing.write_text(yaml.safe_dump(ROUTES))
    env = server_env(SERVER__ROUTER__RESOURCES=json.dumps([str(routing)]))
    zmq = ZmqSettings(port=int(setting(env, "PUSHERS__ZMQ__PORT")))
    router = Router(load_routes_from_mapping(ROUTES))
    process = await ServerProcess(env).start()
    try:
        await (await process.connect()).close()  # it listens
        first = await RecoveringPeer.connect(process.ws_url, CHANNEL)
        await first.report()
        async with ZmqPusher(zmq, router) as pusher:
            await push(pusher, 0, 5)
            last = (await first.read(5)).position
        first.close()
        await process.stop()
        process = await ServerProcess(env).start()
        await (await process.connect()).close()
        back = await RecoveringPeer.connect(process.ws_url, CHANNEL, since=last)
        async with ZmqPusher(zmq, router) as pusher:
            await push(pusher, 5, 8)
            report = await back.report()
            assert report["recovered"] is False
            assert report["position"] is not None and report["position"]["epoch"] != last["epoch"]
            live = await back.read(3)
        assert [p["n"] for p in live.payloads] == [5, 6, 7]
        back.close()
    finally:
        await process.stop()


async def test_a_route_without_history_sends_no_positions(server: containers.Container) -> None:
    """Channels of a route without history get plain EVENTs and recovered: false."""
    pusher = memory_pusher(server)
    peer = await RecoveringPeer.connect(url(server), "acme/plain/1")
    assert (await peer.report())["recovered"] is False
    await pusher.push({"n": 1}, "plain_topic", {"room": "1"})
    message = await peer.peer.receive()
    assert message[3] == {} and message[4] == [{"n": 1}]
    peer.close()


async def test_a_wamp1_client_recovers_through_the_history_rpc(
    server: containers.Container,
) -> None:
    """WAMP v1: subscribe, then gos/history since a position returns what was missed."""
    pusher = memory_pusher(server)
    client = await WampTestClient.connect(url(server))
    client.subscribe(CHANNEL)
    answer: Any = await client.call("gos/history", CHANNEL, None)
    start = answer["position"]
    await push(pusher, 0, 20)
    assert (await client.next_event(CHANNEL)) == {"n": 0}
    await client.close()
    back = await WampTestClient.connect(url(server))
    back.subscribe(CHANNEL)
    answer = await back.call("gos/history", CHANNEL, start)
    assert answer["recovered"] is True
    assert [p["data"]["n"] for p in answer["publications"]] == list(range(20))
    assert answer["position"] == {k: answer["publications"][-1][k] for k in ("epoch", "offset")}
    await back.close()


async def test_the_history_rpc_needs_a_subscription(server: containers.Container) -> None:
    """gos/history on a channel the v1 client did not join is refused (code 403)."""
    client = await WampTestClient.connect(url(server))
    with pytest.raises(Exception, match="subscribe to acme/channel/1 first"):
        await client.call("gos/history", CHANNEL, None)
    await client.close()


async def test_recoveries_are_counted_in_the_metrics(server: containers.Container) -> None:
    """recoveries_total by outcome and recovery_replayed_total count what recoveries did."""
    pusher = memory_pusher(server)
    last = await seen_and_gone(server, pusher, 3)
    await push(pusher, 3, 7)
    for since in (last, {"epoch": "gone", "offset": 1}):
        peer = await RecoveringPeer.connect(url(server), CHANNEL, since=since)
        await peer.report()
        peer.close()
    text = ServerMetrics(service(server, "gos_web_socket.server")).render().decode()
    assert 'gos_websocket_recoveries_total{outcome="complete"} 1.0' in text
    assert 'gos_websocket_recoveries_total{outcome="incomplete"} 1.0' in text
    assert "gos_websocket_recovery_replayed_total 4.0" in text
    assert "gos_websocket_history_channels 1.0" in text


async def test_pushes_read_back_at_start_reach_only_clients_that_recovered(
    server: containers.Container,
) -> None:
    """A refilled push (handled before a restart) is recorded and sent to v2 clients that
    recovered on this node, which drop what they had; a plain v1 subscriber never gets it."""
    recovering = await RecoveringPeer.connect(url(server), CHANNEL)
    await recovering.report()
    plain = await WampTestClient.connect(url(server))
    plain.subscribe(CHANNEL)
    await plain.call("gos/history", CHANNEL, None)  # subscribed for sure
    handler = service(server, "gos_web_socket.server_push_handler.registry")["memory"]
    refill = MemoryDelivery(json.dumps({"topic": CHANNEL, "data": {"n": "old"}}).encode())
    refill.position = LOCAL.next()
    refill.refill = True
    handler.memory.put(refill)
    await refill.outcome
    await push(memory_pusher(server), 0, 1)
    got = await recovering.read(2)
    assert [p["n"] for p in got.payloads] == ["old", 0]
    assert got.positions[0] == refill.position.as_dict()
    assert await plain.next_event(CHANNEL) == {"n": 0}  # the refill never reached it
    recovering.close()
    await plain.close()
