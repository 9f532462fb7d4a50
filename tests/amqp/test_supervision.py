"""Production's first day: a late broker, a SIGKILLed broker, GOS's queue, ack after the write."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import aio_pika
import pytest

from gos_web_socket.app.exceptions import MessageDecodeError
from gos_web_socket.app.router import Router
from gos_web_socket.app.transports.amqp.deadletters import DEAD_LETTER_REASON
from gos_web_socket.app.transports.amqp.pusher import AmqpPusher
from gos_web_socket.settings.models import AmqpSettings
from tests.amqp.conftest import EventLog, RecordingServer, StartHandler, Supervise
from tests.support.rabbitmq import RabbitMQNode
from tests.support.waiting import eventually, settles

PHP_BODY = b'{"topic":"acme\\/channel\\/42","data":["hi"]}'


async def test_handler_consumes_once_a_late_broker_is_up(
    supervise: Supervise, pusher: AmqpPusher, rabbitmq: RabbitMQNode
) -> None:
    """Broker down when the supervisor starts, up 20 s later: consuming within 10 s, and a
    push is delivered, with no manual step (default backoff)."""
    server = RecordingServer()
    await asyncio.to_thread(rabbitmq.stop_app)
    try:
        handler, supervisor = await supervise(server)  # returns although the broker is away
        assert not handler.is_consuming
        await asyncio.sleep(20)
        assert not handler.is_consuming and handler.stats.restarts >= 3
        assert "cannot consume" in supervisor.states["amqp"].last_error
    finally:
        await asyncio.to_thread(rabbitmq.start_app)
    await eventually(lambda: handler.is_consuming, within=10, every=0.01)
    await pusher.push({"n": 1}, "acme_topic", {"room": "42"})
    await eventually(lambda: len(server.received) == 1, within=10, every=0.01)
    assert server.received == [("acme/channel/42", {"n": 1})]


async def test_sigkilled_broker_loses_no_confirmed_push(
    supervise: Supervise, amqp_settings: AmqpSettings, router: Router, rabbitmq: RabbitMQNode
) -> None:
    """SIGKILL of the broker amid 1,500 confirmed pushes, then a restart: the handler resumes
    by itself and every push reaches the topic (duplicates are counted and reported)."""
    server = RecordingServer()
    handler, supervisor = await supervise(server)
    pusher = AmqpPusher(amqp_settings.model_copy(update={"push_timeout": 120}), router)
    total = 1500

    async def produce() -> None:
        for start in range(0, total, 50):  # 50 confirms in flight at a time
            batch = range(start, start + 50)
            await asyncio.gather(
                *(pusher.push({"n": i}, "acme_topic", {"room": "1"}) for i in batch)
            )

    producing = asyncio.create_task(produce())
    killed = False
    try:
        await eventually(lambda: len(server.received) >= 300, within=30, every=0.01)
        killed = True
        await asyncio.to_thread(rabbitmq.kill)
        await eventually(lambda: not handler.is_consuming, within=10, every=0.01)
        await asyncio.to_thread(rabbitmq.start)
        killed = False
        await asyncio.wait_for(producing, 120)  # every push confirmed
        await eventually(lambda: len(server.counts()) == total, within=60, every=0.01)
        await eventually(lambda: handler.is_consuming, within=10, every=0.01)
    finally:
        if killed:
            await asyncio.to_thread(rabbitmq.start)  # leave a working broker to the others
        producing.cancel()
        await pusher.close()
    counts = server.counts()
    assert set(counts) == set(range(total))  # 0 lost
    repeats = sum(count - 1 for count in counts.values())
    print(
        f"\nSIGKILL: {total} confirmed pushes delivered; {handler.stats.deduplicated} "
        f"redeliveries dropped by message id, {repeats} reached the topic twice; "
        f"restarts {handler.stats.restarts}"
    )
    assert repeats == 0  # redeliveries of handled pushes are dropped by id
    assert handler.stats.restarts >= 1 and supervisor.states["amqp"].status == "consuming"


async def test_php_declared_queue_is_adopted(
    supervise: Supervise,
    raw_channel: aio_pika.abc.AbstractChannel,
    events: EventLog,
    router: Router,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """gos_websocket declared by PHP (durable, no arguments) is consumed as it is: a PHP push is
    delivered, a poison one lands in the DLQ with its reason and one push_fail, and the good
    pushes after it are delivered; our own pusher adopts the queue too."""
    await raw_channel.declare_queue("gos_websocket", durable=True)
    server = RecordingServer()
    try:
        with caplog.at_level(logging.WARNING, "gos_web_socket.app.transports.amqp"):
            handler, _ = await supervise(
                server, queue_name="gos_websocket", exchange_name="gos_websocket_exchange"
            )
        assert handler.is_consuming and handler.amqp.adopted
        assert [r for r in caplog.records if "no broker-side dead-lettering" in r.message]
        exchange = await raw_channel.get_exchange("gos_websocket_exchange")
        for body in (PHP_BODY, b"not json", b'{"topic":"acme/channel/42","data":["after"]}'):
            await exchange.publish(aio_pika.Message(body), routing_key="")  # as PHP does
        await eventually(lambda: len(server.received) == 2, within=10, every=0.01)
        assert server.received == [("acme/channel/42", ["hi"]), ("acme/channel/42", ["after"])]
        async with AmqpPusher(handler.settings, router) as pusher:  # ours adopts it too
            await pusher.push({"n": 3}, "acme_topic", {"room": "42"})
        await eventually(lambda: len(server.received) == 3, within=10, every=0.01)
        assert server.received[2] == ("acme/channel/42", {"n": 3})
        assert [type(event.error) for event in events.fail] == [MessageDecodeError]
        dlq = await raw_channel.get_queue(handler.settings.dead_letter_queue)
        dead = await dlq.get(no_ack=True, timeout=5)
        assert dead.body == b"not json"
        assert "not valid JSON" in str((dead.headers or {})[DEAD_LETTER_REASON])
        assert await dlq.get(no_ack=True, fail=False) is None
        queue = await raw_channel.get_queue("gos_websocket")
        assert (await queue.declare()).message_count == 0  # all three were settled
    finally:
        await raw_channel.queue_delete("gos_websocket")
        await raw_channel.exchange_delete("gos_websocket_exchange")


@dataclass
class SlowFlushServer(RecordingServer):
    """Its frames are "written" only when the test sets ``release``."""

    flushing: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def flushed(self) -> None:
        self.flushing.set()
        await self.release.wait()


async def test_ack_waits_for_the_frames_to_be_written(
    start_handler: StartHandler, pusher: AmqpPusher, rabbitmq: RabbitMQNode
) -> None:
    """A handled push stays unacked in the broker until flushed() returned, then is acked."""
    server = SlowFlushServer()
    handler = await start_handler(server)
    await pusher.push({"n": 1}, "acme_topic", {"room": "42"})
    await asyncio.wait_for(server.flushing.wait(), 10)
    assert server.received == [("acme/channel/42", {"n": 1})]  # on_push ran
    assert await asyncio.to_thread(rabbitmq.queue_counts, handler.queue_name) == (0, 1)
    server.release.set()
    counts = await settles(
        lambda: asyncio.to_thread(rabbitmq.queue_counts, handler.queue_name),
        lambda counts: counts == (0, 0),
        within=40,
        every=0.25,
        what="the queue empty and acked",
    )
    assert counts == (0, 0)
