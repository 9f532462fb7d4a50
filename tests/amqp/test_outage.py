"""Broker outages: pushes retry through a RabbitMQ restart and the supervised handler resumes."""

from __future__ import annotations

import asyncio

import pytest

from gos_web_socket.app.router import Router
from gos_web_socket.app.transports.amqp.pusher import AmqpPusher
from gos_web_socket.settings.models import AmqpSettings
from tests.amqp.conftest import RecordingServer, Supervise
from tests.support.rabbitmq import RabbitMQNode
from tests.support.waiting import eventually


async def test_broker_restart_during_2000_pushes(
    supervise: Supervise,
    amqp_settings: AmqpSettings,
    router: Router,
    rabbitmq: RabbitMQNode,
) -> None:
    """The broker stopped and started amid 2,000 pushes: every one reaches the topic once."""
    server = RecordingServer()
    handler, _ = await supervise(server)
    pusher = AmqpPusher(amqp_settings.model_copy(update={"push_timeout": 60}), router)
    broker_down = asyncio.Event()
    pushed = 0

    async def produce() -> None:
        nonlocal pushed
        for start in range(0, 2000, 50):  # 50 confirms in flight at a time
            if start == 1000:
                await broker_down.wait()  # the second half is pushed into the outage
            batch = range(start, start + 50)
            await asyncio.gather(
                *(pusher.push({"n": i}, "acme_topic", {"room": "1"}) for i in batch)
            )
            pushed = start + 50

    producing = asyncio.create_task(produce())
    broker_stopped = False
    try:
        await eventually(lambda: len(server.received) >= 400, within=30, every=0.01)
        # The first half is confirmed (a batch in flight at the stop would just wait for the
        # broker, so waiting for it afterwards could never succeed).
        await eventually(lambda: pushed == 1000, within=30, every=0.01)
        broker_stopped = True
        await asyncio.to_thread(rabbitmq.stop_app)
        await eventually(lambda: not handler.is_consuming, within=10, every=0.01)
        broker_down.set()
        with pytest.raises(TimeoutError):  # pushes wait for the broker, they do not fail
            await asyncio.wait_for(asyncio.shield(producing), 1.0)
        assert pushed == 1000
        await asyncio.to_thread(rabbitmq.start_app)
        broker_stopped = False
        await asyncio.wait_for(producing, 60)
        await eventually(lambda: len(server.received) >= 2000, within=60, every=0.01)
        await eventually(lambda: handler.is_consuming, within=10, every=0.01)
        counts = server.counts()
        assert len(counts) == 2000 and set(counts.values()) == {1}
        assert len(server.received) == 2000
    finally:
        if broker_stopped:
            await asyncio.to_thread(rabbitmq.start_app)  # leave a working broker to the others
        producing.cancel()
        await pusher.close()
