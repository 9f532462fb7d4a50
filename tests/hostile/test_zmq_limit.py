"""The ZeroMQ PULL socket refuses a frame over ``server.limits.zmq_max_message_size``.

Without ``ZMQ_MAXMSGSIZE`` libzmq receives a frame of any size whole before the handler sees
it: one 100 MB frame to the handler's port costs the server 100 MB or more, however the
handler then rejects it.
"""

from __future__ import annotations

import asyncio

import zmq
import zmq.asyncio

from app.router import Router, load_routes
from app.transports.zmq import ZmqPusher
from settings.models import DEFAULT_ROUTING, ZmqSettings
from tests.hostile.harness import MiB, rss
from tests.support.process import ServerProcess, server_env, setting

CHANNEL = "acme/channel/zmq_limit"


async def test_a_100_mb_zmq_frame_is_refused_without_an_rss_jump() -> None:
    """A 100 MB frame raises the server's peak RSS by under 10 MiB; later pushes still arrive."""
    server = await ServerProcess(server_env()).start()
    context = zmq.asyncio.Context()
    try:
        subscriber = await server.subscriber(CHANNEL)
        assert server.process is not None
        pid = server.process.pid
        peak_before = rss(pid, "VmHWM")
        port = int(setting(server.env, "PUSHERS__ZMQ__PORT"))
        sock = context.socket(zmq.PUSH)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(f"tcp://127.0.0.1:{port}")
        await sock.send(b'{"topic": "' + b"x" * (100 * MiB) + b'"}')
        await asyncio.sleep(3.0)  # long enough for libzmq to read 100 MB over loopback
        sock.close()
        growth = (rss(pid, "VmHWM") - peak_before) / MiB
        pusher = ZmqPusher(ZmqSettings(port=port), Router(load_routes(DEFAULT_ROUTING)))
        try:
            await pusher.push({"after": True}, "acme_topic", {"room": "zmq_limit"})
            assert await subscriber.next_event(CHANNEL, timeout=5) == {"after": True}
        finally:
            await pusher.close()
            await subscriber.close()
        assert growth < 10, f"peak RSS grew by {growth:.0f} MiB for one 100 MB ZeroMQ frame"
    finally:
        context.destroy(linger=0)
        await server.stop()
