"""`server -m`: the periodic profile line of a real server process, as users run it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from gos_web_socket.app.router import Router, load_routes
from gos_web_socket.app.testing import WampTestClient
from gos_web_socket.app.transports.zmq.pusher import ZmqPusher
from gos_web_socket.settings.models import DEFAULT_ROUTING, ZmqSettings
from tests.support.rabbitmq import free_port

ROOT = Path(__file__).resolve().parents[2]


def fields(line: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in line.split() if "=" in part)


async def test_profile_prints_memory_connections_and_pushes_per_second() -> None:
    """With -m the server logs rss, connections and pushes/s every profile_interval seconds."""
    ws_port, zmq_port, metrics_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "GOS_WEB_SOCKET__SERVER__METRICS__PORT": str(metrics_port),
        "GOS_WEB_SOCKET__SERVER__METRICS__PROFILE_INTERVAL": "0.5",
        "GOS_WEB_SOCKET__PUSHERS__ZMQ__PORT": str(zmq_port),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gos_web_socket.app", "server", "-p", str(ws_port), "-m",
        cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    client = None
    pusher = ZmqPusher(ZmqSettings(port=zmq_port), Router(load_routes(DEFAULT_ROUTING)))
    try:

        async def next_profile() -> dict[str, str]:
            while True:
                line = (await process.stderr.readline()).decode()  # type: ignore[union-attr]
                assert line, "the server exited"
                if "msg=profile" in line:
                    return fields(line)

        first = await asyncio.wait_for(next_profile(), 30)
        assert float(first["rss_mib"]) > 0 and first["connections"] == "0"
        client = await WampTestClient.connect(f"ws://127.0.0.1:{ws_port}/")
        client.subscribe("acme/channel/1")
        await client.call("acme/rpc/sum", 1, 1)  # in order after SUBSCRIBE: subscribed now
        for n in range(20):
            await pusher.push({"n": n}, "acme_topic", {"room": "1"})
        await client.next_event("acme/channel/1")

        async def busy_report() -> dict[str, str]:
            while True:
                report = await next_profile()
                if float(report["pushes_per_s"]) > 0:
                    return report

        report = await asyncio.wait_for(busy_report(), 30)
        assert report["connections"] == "1" and report["subscriptions"] == "1"
        assert float(report["frames_out_per_s"]) > 0
    finally:
        await pusher.close()
        if client is not None:
            await client.close()
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), 30)
