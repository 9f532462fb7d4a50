"""Background push_sync on the real RabbitMQ: failures listed, window bounded, restarts."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import aio_pika
import pytest

from gos_web_socket.app.events import EventDispatcher
from gos_web_socket.app.exceptions import FailedPush, PushFailed
from gos_web_socket.app.router import Router
from gos_web_socket.app.transports.amqp.pusher import AmqpPusher
from gos_web_socket.settings.models import AmqpSettings
from tests.amqp.conftest import (
    RecordingServer,
    Supervise,
    raw_channel as raw_channel,  # to change the topology under it
)
from tests.support.rabbitmq import RabbitMQNode
from tests.support.waiting import eventually
from tests.sync_push.conftest import FailLog

ROOM = {"room": "1"}
MESSAGE_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def amqp_settings(rabbitmq: RabbitMQNode) -> AmqpSettings:
    """Background mode on the run's broker, with names no other test uses."""
    return rabbitmq.amqp_settings(
        push_timeout=15, reconnect_interval=0.5, confirm_mode="background", max_in_flight=100
    )


@pytest.fixture
async def pusher(
    amqp_settings: AmqpSettings, router: Router, dispatcher: EventDispatcher
) -> AsyncIterator[AmqpPusher]:
    pusher = AmqpPusher(amqp_settings, router, dispatcher)
    try:
        yield pusher
    finally:
        try:
            await asyncio.to_thread(pusher.close_sync)
        except PushFailed:
            pass  # the test looked at its failures already


@pytest.fixture
async def supervise(amqp_settings: AmqpSettings, router: Router) -> AsyncIterator[Supervise]:
    """tests/amqp's handler under a Supervisor, on this module's settings."""
    from gos_web_socket.app.transports.amqp.handler import AmqpServerPushHandler
    from gos_web_socket.app.transports.supervisor import Supervisor

    started: list[Supervisor] = []

    async def run(app: Any, **overrides: Any) -> tuple[AmqpServerPushHandler, Supervisor]:
        settings = amqp_settings.model_copy(update=overrides)
        handler = AmqpServerPushHandler(settings, router, EventDispatcher())
        running = Supervisor({"amqp": handler}, app, first_backoff=0.05, max_backoff=0.5)
        started.append(running)
        await running.start()
        return handler, running

    try:
        yield run
    finally:
        for running in started:
            await running.close()


async def stalled(count: Callable[[], int], within: float = 20.0) -> int:
    """Wait until ``count()`` stops moving for 0.5 s; return where it stopped."""
    deadline = asyncio.get_running_loop().time() + within
    last = count()
    while True:
        await asyncio.sleep(0.5)
        if count() == last:
            return last
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"still moving after {within} s")
        last = count()


def push_many(pusher: AmqpPusher, numbers: range, **options: Any) -> None:
    for n in numbers:
        pusher.push_sync({"n": n}, "acme_topic", ROOM, timeout=60, **options)


async def test_unroutable_pushes_are_listed_by_flush_with_their_message_ids(
    pusher: AmqpPusher, supervise: Supervise, fail_log: FailLog
) -> None:
    """Mandatory publishes the broker cannot route (no queue bound with that key) come back:
    flush_sync lists each with its AMQP message id and the reason, push_fail fires for each,
    and the routable ones around them are delivered."""
    server = RecordingServer()
    await supervise(server)

    def pushes() -> None:
        for n in range(30):
            context = {"routing_key": "nowhere"} if n % 10 == 3 else None
            pusher.push_sync({"n": n}, "acme_topic", {"room": str(n)}, context)

    await asyncio.to_thread(pushes)
    with pytest.raises(PushFailed) as info:
        await asyncio.to_thread(pusher.flush_sync, 30)
    failures: list[FailedPush] = info.value.failures
    assert str(info.value).startswith('pusher "amqp": 3 of 30 background pushes failed:')
    assert sorted(f.data["n"] for f in failures) == [3, 13, 23]
    assert all(MESSAGE_ID.fullmatch(f.message_id or "") for f in failures)
    assert all("could not route the push" in str(f.error) for f in failures)
    for failure in failures:
        assert f"acme/channel/{failure.data['n']}), message id {failure.message_id}" in str(
            info.value
        )
    assert {e.failure.message_id for e in fail_log.events} == {f.message_id for f in failures}
    await eventually(lambda: len(server.received) == 27, within=15, every=0.01)
    assert sorted(server.counts()) == [n for n in range(30) if n % 10 != 3]


async def test_deleted_exchange_is_declared_again_and_nothing_is_lost(
    pusher: AmqpPusher,
    supervise: Supervise,
    amqp_settings: AmqpSettings,
    raw_channel: aio_pika.abc.AbstractChannel,
) -> None:
    """The exchange deleted under a connected pusher: the broker closes its channel, aio-pika
    reopens it and declares the exchange and binding again, and every push is delivered."""
    server = RecordingServer()
    await supervise(server)
    await asyncio.to_thread(push_many, pusher, range(5))
    await asyncio.to_thread(pusher.flush_sync, 30)
    await raw_channel.exchange_delete(amqp_settings.exchange_name)
    await asyncio.to_thread(push_many, pusher, range(5, 40))
    await asyncio.to_thread(pusher.flush_sync, 30)
    await eventually(lambda: len(server.received) >= 40, within=15, every=0.01)
    assert sorted(server.counts()) == list(range(40)) and len(server.received) == 40


async def test_window_is_bounded_while_the_broker_is_down(
    pusher: AmqpPusher, rabbitmq: RabbitMQNode, fail_log: FailLog
) -> None:
    """Broker stopped: push_sync takes max_in_flight (10) pushes, the 11th waits its timeout
    and fails; once push_timeout passes, flush_sync lists all 10 and push_fail fired for each."""
    pusher.max_in_flight = 10
    pusher.settings = pusher.settings.model_copy(update={"push_timeout": 3.0})
    await asyncio.to_thread(push_many, pusher, range(2))  # connected before the outage
    await asyncio.to_thread(pusher.flush_sync, 30)
    await asyncio.to_thread(rabbitmq.stop_app)
    try:
        await asyncio.to_thread(push_many, pusher, range(10))
        assert pusher.in_flight == 10
        with pytest.raises(PushFailed, match=r"10 background pushes \(max_in_flight\)"):
            await asyncio.to_thread(pusher.push_sync, {"n": 10}, "acme_topic", ROOM, None, 0.3)
        assert pusher.in_flight == 10
        with pytest.raises(PushFailed, match="10 of 10 background pushes failed") as info:
            await asyncio.to_thread(pusher.flush_sync, 30)
    finally:
        await asyncio.to_thread(rabbitmq.start_app)
    assert all("did not confirm the push within 3.0 s" in str(f.error) for f in info.value.failures)
    assert sorted(f.data["n"] for f in info.value.failures) == list(range(10))
    assert len(fail_log.events) == 10


async def test_broker_restart_during_a_background_burst_loses_nothing(
    pusher: AmqpPusher, supervise: Supervise, rabbitmq: RabbitMQNode
) -> None:
    """A thread pushes in background mode without pause while the broker is stopped and
    started: during the outage push_sync stalls on the full window; afterwards every push
    reaches the topic exactly once and flush_sync reports nothing lost."""
    pusher.settings = pusher.settings.model_copy(update={"push_timeout": 60.0})
    server = RecordingServer()
    handler, _ = await supervise(server)
    stop = threading.Event()
    pushed = 0

    def burst() -> None:
        nonlocal pushed
        while not stop.is_set():
            pusher.push_sync({"n": pushed}, "acme_topic", ROOM, timeout=60)
            pushed += 1

    pushing = asyncio.ensure_future(asyncio.to_thread(burst))
    broker_down = False
    try:
        await eventually(lambda: len(server.received) >= 500, within=60, every=0.01)
        broker_down = True
        await asyncio.to_thread(rabbitmq.stop_app)
        await eventually(lambda: not handler.is_consuming, within=10, every=0.01)
        stalled_at = await stalled(lambda: pushed)  # push_sync waits for room
        # No confirm comes back: the window stays as full as it was (a blocked caller is
        # woken once a quarter is free, so it may have stopped anywhere in the last quarter).
        await asyncio.sleep(0.5)
        assert pushed == stalled_at
        assert pusher.max_in_flight * 3 // 4 <= pusher.in_flight <= pusher.max_in_flight
        await asyncio.to_thread(rabbitmq.start_app)
        broker_down = False
        await eventually(lambda: len(server.counts()) >= stalled_at + 500, within=60, every=0.01)
        stop.set()
        await asyncio.wait_for(pushing, 60)
        await asyncio.to_thread(pusher.flush_sync, 90)  # raises if any push was lost
        await eventually(lambda: len(server.counts()) >= pushed, within=60, every=0.01)
    finally:
        stop.set()
        if broker_down:
            await asyncio.to_thread(rabbitmq.start_app)
        await asyncio.wait({pushing}, timeout=120)
    counts = server.counts()
    assert sorted(counts) == list(range(pushed)) and set(counts.values()) == {1}
    assert pushed > stalled_at + 500 and pusher.stats.failed == 0
