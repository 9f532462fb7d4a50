"""The AMQP pusher against the run's RabbitMQ: properties, context, errors, deadlines, threads."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aio_pika
import pytest
from aio_pika.exceptions import PublishError
from aiormq.channel import Channel as AiormqChannel

from gos_web_socket.app.exceptions import InvalidPushArgument, PushFailed, RouteNotFound
from gos_web_socket.app.router import Router
from gos_web_socket.app.transports.amqp.pusher import AmqpPusher
from gos_web_socket.app.transports.amqp.topology import AMQP_IMMEDIATE, AMQP_MANDATORY
from gos_web_socket.settings.models import AmqpSettings
from tests.amqp.conftest import RecordingServer, StartHandler
from tests.support.rabbitmq import free_port
from tests.support.threads import run_threads
from tests.support.waiting import eventually


async def _get_one(channel: aio_pika.abc.AbstractChannel, queue: str) -> Any:
    message = await (await channel.get_queue(queue)).get(no_ack=True, fail=False)
    assert message is not None, f"queue {queue} is empty"
    return message


async def test_message_is_persistent_json_with_id(
    pusher: AmqpPusher, amqp_settings: AmqpSettings, raw_channel: aio_pika.abc.AbstractChannel
) -> None:
    """A push lands in the shared queue as a persistent JSON envelope with a message_id."""
    await pusher.push("hi", "acme_topic", {"room": "42"})
    message = await _get_one(raw_channel, amqp_settings.queue_name)
    assert json.loads(message.body) == {"topic": "acme/channel/42", "data": ["hi"]}
    assert message.content_type == "application/json"
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.message_id and len(message.message_id) == 32


async def test_context_options_reach_the_broker(
    pusher: AmqpPusher, amqp_settings: AmqpSettings, raw_channel: aio_pika.abc.AbstractChannel
) -> None:
    """routing_key, publish_flags and GOS attributes (headers, priority, expiration ms) apply."""
    context = {
        "routing_key": "",
        "publish_flags": AMQP_MANDATORY,
        "attributes": {
            "headers": {"x-origin": "test"},
            "priority": 5,
            "expiration": "60000",
            "app_id": "backend",
            "message_id": "fixed-id",
        },
    }
    await pusher.push({"msg": "x"}, "acme_topic", {"room": "1"}, context)
    message = await _get_one(raw_channel, amqp_settings.queue_name)
    assert message.headers == {"x-origin": "test"}
    assert (message.priority, message.app_id, message.message_id) == (5, "backend", "fixed-id")
    assert message.expiration == 60.0  # aio-pika reports seconds


@pytest.mark.parametrize(
    ("context", "fragment"),
    [
        ({"exchange": "x"}, "allowed: routing_key, publish_flags, attributes"),
        ({"attributes": {"colour": "red"}}, "allowed: app_id"),
        ({"publish_flags": AMQP_IMMEDIATE}, "immediate is not supported"),
        ({"publish_flags": {"mandatory": False}}, "mandatory cannot be turned off"),
        ({"publish_flags": 7}, "unknown bits"),
        ({"publish_flags": "mandatory"}, "must be an int or a mapping"),
        ({"routing_key": 5}, "routing_key must be a string"),
        ({"attributes": {"expiration": "soon"}}, "expiration must be milliseconds"),
        ({"attributes": {"delivery_mode": "x"}}, "invalid AMQP attributes"),
    ],
)
async def test_invalid_context_is_refused(
    amqp_settings: AmqpSettings, router: Router, context: dict[str, Any], fragment: str
) -> None:
    """Context the pusher cannot honour raises InvalidPushArgument naming what is allowed."""
    unreachable = amqp_settings.model_copy(update={"port": free_port()})
    pusher = AmqpPusher(unreachable, router)  # validation happens before any connect
    with pytest.raises(InvalidPushArgument, match=fragment):
        await pusher.push("hi", "acme_topic", {"room": "1"}, context)
    assert not pusher.is_connected


async def test_unknown_route_propagates(pusher: AmqpPusher) -> None:
    """Router errors reach the caller unchanged, as in GOS."""
    with pytest.raises(RouteNotFound):
        await pusher.push("hi", "no_such_route")


async def test_unroutable_push_fails_at_once(amqp_settings: AmqpSettings, router: Router) -> None:
    """With no queue bound (per_node mode, no node running) a push fails instead of vanishing."""
    settings = amqp_settings.model_copy(update={"queue_mode": "per_node"})
    pusher = AmqpPusher(settings, router)
    try:
        started = time.monotonic()
        with pytest.raises(PushFailed, match="could not route") as caught:
            await pusher.push("hi", "acme_topic", {"room": "1"})
        assert time.monotonic() - started < 2
        assert isinstance(caught.value.__cause__, PublishError)
        assert caught.value.transport == "amqp"
    finally:
        await pusher.close()


async def test_a_runtime_error_in_the_send_path_propagates_at_once(
    pusher: AmqpPusher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A RuntimeError on a working connection is a bug, not an outage: it is raised at once
    instead of being retried until push_timeout (15 s here)."""
    await pusher.push("warm", "acme_topic", {"room": "1"})  # connected
    assert pusher.is_connected

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug in the send path")

    monkeypatch.setattr(AiormqChannel, "basic_publish", broken)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="a bug in the send path"):
        await pusher.push("hi", "acme_topic", {"room": "1"})
    assert time.monotonic() - started < 1
    assert pusher.stats.failed == 1


async def test_unreachable_broker_fails_within_push_timeout(
    amqp_settings: AmqpSettings, router: Router
) -> None:
    """Nothing listening: push retries until push_timeout, then PushFailed with the cause."""
    settings = amqp_settings.model_copy(update={"port": free_port(), "push_timeout": 1.5})
    pusher = AmqpPusher(settings, router)
    started = time.monotonic()
    with pytest.raises(PushFailed, match="did not confirm the push within 1.5 s") as caught:
        await pusher.push("hi", "acme_topic", {"room": "1"})
    elapsed = time.monotonic() - started
    assert 1.4 <= elapsed < 2.5
    assert "Connect call failed" in str(caught.value.__cause__)  # the refused connect, chained
    await pusher.close()


@pytest.mark.parametrize("home", ["private loop thread", "running test loop"])
async def test_push_sync_from_eight_threads(
    amqp_settings: AmqpSettings, router: Router, start_handler: StartHandler, home: str
) -> None:
    """push_sync from 8 plain threads at once: every push is delivered exactly once."""
    server = RecordingServer()
    await start_handler(server)
    pusher = AmqpPusher(amqp_settings, router)
    expected = 400
    if home == "running test loop":  # an async push first binds the pusher to this loop
        await pusher.push({"n": "async"}, "acme_topic", {"room": "7"})
        expected += 1

    def worker(thread: int) -> None:
        for i in range(50):
            pusher.push_sync({"n": f"{thread}-{i}"}, "acme_topic", {"room": "7"}, timeout=30)

    try:
        await asyncio.to_thread(run_threads, worker)
        await eventually(lambda: len(server.received) >= expected, within=10, every=0.01)
        assert len(server.counts()) == expected and set(server.counts().values()) == {1}
    finally:
        await asyncio.to_thread(pusher.close_sync)
