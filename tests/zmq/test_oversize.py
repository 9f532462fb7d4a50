"""No ZeroMQ push lost to a size limit in silence (issue 24, item 4), over real sockets.

Our pusher knows ``server.limits.zmq_max_message_size`` from the same settings as the server
and refuses a bigger push with ``PushFailed``; a foreign peer's bigger frame is dropped by the
server, counted (``pushes_oversize``) and logged once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest
import zmq

from gos_web_socket.app.demo import AcmeRpc, AcmeTopic
from gos_web_socket.app.exceptions import PushFailed
from gos_web_socket.app.metrics import ServerMetrics
from gos_web_socket.app.testing import WampTestClient
from gos_web_socket.app.transports.zmq.context import shared_context
from gos_web_socket.app.transports.zmq.fanout import ZmqFanout, ZmqSubscriber
from gos_web_socket.app.transports.zmq.handler import ZmqServerPushHandler
from gos_web_socket.app.transports.zmq.receiver import OVERSIZE_READ
from gos_web_socket.app.transports.zmq.wire import endpoint
from gos_web_socket.push import create_pushers
from gos_web_socket.settings.models import ZmqSettings
from tests.support.rabbitmq import free_port
from tests.support.server import running_server, url_of
from tests.support.waiting import eventually
from tests.zmq.conftest import EventLog, RecordingServer

LOBBY = "acme/channel/lobby"
FIVE_MB = 5_000_000
DROP_LINE = "dropped a push of"


def envelope(size: int, room: str = "lobby") -> bytes:
    """A GOS envelope of about ``size`` bytes, as a PHP pusher would write it."""
    return b'{"topic":"acme/channel/%s","data":"%s"}' % (room.encode(), b"x" * size)


async def test_a_5_mb_push_with_default_limits_is_refused_at_the_pusher() -> None:
    """Defaults: 5 MB raises PushFailed naming the setting and its bytes; the next push arrives."""
    zmq_node = {"zmq": {"port": free_port()}}
    async with running_server(topics=[AcmeTopic()], rpcs=[AcmeRpc()], pushers=zmq_node) as ws:
        client = await WampTestClient.connect(url_of(ws))
        pusher = create_pushers(pushers=zmq_node).zmq()
        try:
            client.subscribe(LOBBY)
            assert await client.call("acme/rpc/sum", 1, 2) == [3]
            started = time.perf_counter()
            with pytest.raises(PushFailed) as refused:
                await pusher.push("x" * FIVE_MB, "acme_topic", {"room": "lobby"})
            took = time.perf_counter() - started
            message = str(refused.value)
            assert "server.limits.zmq_max_message_size" in message and "1048576 bytes" in message
            assert refused.value.transport == "zmq" and took < 1.0
            await pusher.push({"after": 1}, "acme_topic", {"room": "lobby"})
            assert await client.next_event(LOBBY, timeout=5) == {"after": 1}
            assert (pusher.stats.sent, pusher.stats.failed) == (1, 1)
        finally:
            await pusher.close()
            await client.close()


async def test_the_pusher_takes_the_limit_from_the_servers_settings() -> None:
    """A lowered zmq_max_message_size: the pusher sends under it (delivered), refuses over it."""
    zmq_node = {"zmq": {"port": free_port()}}
    limits = {"zmq_max_message_size": 4096}
    async with running_server(
        topics=[AcmeTopic()], rpcs=[AcmeRpc()], pushers=zmq_node, limits=limits
    ) as ws:
        client = await WampTestClient.connect(url_of(ws))
        pusher = create_pushers(pushers=zmq_node, server={"limits": limits}).zmq()
        try:
            client.subscribe(LOBBY)
            assert await client.call("acme/rpc/sum", 1, 2) == [3]
            with pytest.raises(PushFailed, match=r"zmq_max_message_size \(4096 bytes\)"):
                await pusher.push("x" * 5000, "acme_topic", {"room": "lobby"})
            await pusher.push({"y": "y" * 3000}, "acme_topic", {"room": "lobby"})
            assert await client.next_event(LOBBY, timeout=5) == {"y": "y" * 3000}
        finally:
            await pusher.close()
            await client.close()


async def test_a_foreign_peers_oversize_frames_are_counted_and_logged_once(
    handler: ZmqServerPushHandler,
    zmq_settings: ZmqSettings,
    server: RecordingServer,
    events: EventLog,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Three 5 MB frames from a raw PUSH socket: none delivered, 3 counted, one warning line."""
    caplog.set_level(logging.WARNING, "gos_web_socket.app.transports.zmq")
    sock = shared_context().socket(zmq.PUSH)
    sock.connect(endpoint(zmq_settings))
    try:
        for _ in range(3):
            await sock.send(envelope(FIVE_MB))
        await sock.send(envelope(10, room="after"))
        [(request, data, _)] = await server.take(1)
    finally:
        sock.close(linger=0)
    assert (request.matched, data) == ("acme/channel/after", "x" * 10)
    assert handler.stats.oversize == 3 and handler.stats.received == 1
    lines = [r.getMessage() for r in caplog.records if DROP_LINE in r.getMessage()]
    assert len(lines) == 1, lines
    assert "server.limits.zmq_max_message_size (1048576 bytes)" in lines[0]
    assert events.failures == [] and handler.is_consuming


async def test_a_foreign_oversize_frame_shows_in_the_servers_metrics() -> None:
    """A running server: a raw 5 MB frame makes pushes_oversize_total 1 on /metrics' collector."""
    zmq_node = {"zmq": {"port": free_port()}}
    async with running_server(topics=[AcmeTopic()], pushers=zmq_node) as server:
        metrics = ServerMetrics(server)
        handler = server.push_handlers["zmq"]
        sock = shared_context().socket(zmq.PUSH)
        sock.connect(endpoint(handler.settings))
        try:
            await sock.send(envelope(FIVE_MB))
            await eventually(lambda: handler.stats.oversize == 1, what="the frame counted")
        finally:
            sock.close(linger=0)
            text = metrics.render().decode()
            metrics.detach()
    assert 'gos_websocket_pushes_oversize_total{handler="zmq",transport="zmq"} 1.0' in text


async def test_frames_over_the_read_limit_are_cut_by_libzmq_and_pushes_go_on(
    handler: ZmqServerPushHandler,
    zmq_settings: ZmqSettings,
    server: RecordingServer,
) -> None:
    """Beyond OVERSIZE_READ times the limit libzmq drops the peer unread; the next peer's push
    still arrives (the memory guard of tests/hostile/test_zmq_limit.py stays)."""
    huge = shared_context().socket(zmq.PUSH)
    huge.connect(endpoint(zmq_settings))
    await huge.send(envelope(OVERSIZE_READ * (1 << 20) + 1))
    good = shared_context().socket(zmq.PUSH)
    good.connect(endpoint(zmq_settings))
    try:
        await good.send(envelope(10, room="after"))
        [(request, _, _)] = await server.take(1)
    finally:
        huge.close(linger=0)
        good.close(linger=0)
    assert request.matched == "acme/channel/after"
    assert handler.stats.received == 1


async def test_the_workers_fanout_drops_counts_and_logs_oversize_frames(
    zmq_settings: ZmqSettings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """server.workers: the parent drops a 5 MB frame before forwarding (counted, one warning);
    the worker gets the good frame after it."""
    caplog.set_level(logging.WARNING, "gos_web_socket.app.transports.zmq")
    fanout = ZmqFanout(zmq_settings, f"ipc://{tmp_path}/fanout")
    await fanout.start()
    worker = ZmqSubscriber(zmq_settings, fanout.publish)
    sock = shared_context().socket(zmq.PUSH)
    try:
        await worker.open()
        sock.connect(endpoint(zmq_settings))
        await sock.send(envelope(FIVE_MB))
        await sock.send(envelope(10, room="after"))
        async with asyncio.timeout(10):
            [delivery] = await worker.receive()
    finally:
        sock.close(linger=0)
        await worker.close()
        await fanout.close()
    assert delivery.body == envelope(10, room="after")
    assert (fanout.oversize, fanout.forwarded) == (1, 1)
    assert len([r for r in caplog.records if DROP_LINE in r.getMessage()]) == 1
