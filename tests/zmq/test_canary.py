"""A worker's ZeroMQ subscription silently dropped: the canary finds it deaf (issue #29)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import zmq

from gos_web_socket.app.events import EventDispatcher
from gos_web_socket.app.router import Router
from gos_web_socket.app.transports.supervisor import Supervisor
from gos_web_socket.app.transports.zmq.context import shared_context
from gos_web_socket.app.transports.zmq.fanout import ZmqFanout
from gos_web_socket.app.transports.zmq.handler import ZmqServerPushHandler
from gos_web_socket.app.transports.zmq.wire import endpoint
from gos_web_socket.settings.canary import CanarySettings
from gos_web_socket.settings.models import ZmqSettings
from tests.support.waiting import eventually
from tests.zmq.conftest import RecordingServer

INTERVAL, TIMEOUT = 2.0, 1.0


@pytest.mark.parametrize("canary_on", [True, False], ids=["canary", "no-canary"])
async def test_an_unsubscribed_worker_is_reported_deaf_and_subscribes_again(
    canary_on: bool,
    zmq_settings: ZmqSettings,
    router: Router,
    dispatcher: EventDispatcher,
    tmp_path: Path,
) -> None:
    """server.workers: a worker's SUB socket unsubscribed under it (its fan-out frames stop,
    no error): with the canary it is deaf within two intervals, restarted, and hears again;
    without, it stays "consuming" and deaf."""
    canary = CanarySettings(interval=INTERVAL if canary_on else 0, timeout=TIMEOUT)
    settings = zmq_settings.model_copy(update={"canary": canary})
    fanout = ZmqFanout(settings, f"ipc://{tmp_path}/fanout")
    await fanout.start()
    handler = ZmqServerPushHandler(settings, router, dispatcher, fanout=fanout.publish)
    supervisor = Supervisor({"zmq": handler}, RecordingServer())
    try:
        await supervisor.start()
        await eventually(lambda: handler.is_consuming, 10, every=0.02)
        if canary_on:
            assert handler.canary is not None
            await eventually(lambda: handler.canary.returned >= 1, 3 * INTERVAL, every=0.02)  # type: ignore[union-attr]
        sub = handler.receiver._socket  # type: ignore[attr-defined]  # the fault, from outside
        sub.setsockopt(zmq.UNSUBSCRIBE, b"")
        if not canary_on:
            await asyncio.sleep(2 * INTERVAL + TIMEOUT)  # nothing to wait for: nothing happens
            assert handler.is_consuming and not handler.deaf
            assert supervisor.states["zmq"].restarts == 0
            push = shared_context().socket(zmq.PUSH)
            try:
                push.connect(endpoint(settings))
                await push.send(b'{"topic":"acme/channel/1","data":1}')
                await eventually(lambda: fanout.forwarded == 1, 10, every=0.02)
                await asyncio.sleep(0.5)  # what the worker would have needed to take it
            finally:
                push.close(linger=0)
            assert handler.stats.received == 0 and handler.is_consuming  # deaf, unnoticed
            return
        await eventually(lambda: handler.deaf, 2 * INTERVAL + 3, every=0.02)
        assert handler.canary is not None and handler.canary.misses == 1
        await eventually(lambda: not handler.deaf and handler.is_consuming, 20, every=0.02)
        assert supervisor.states["zmq"].restarts == 1
        assert handler.stats.received == 0  # markers are not pushes
    finally:
        await supervisor.close()
        await fanout.close()
