"""Deaf consumers: a queue deleted under the server, a queue silently unbound (issue #29)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import aio_pika
import pytest

from gos_web_socket.app.exceptions import PushHandlerError
from gos_web_socket.app.ops import readiness
from gos_web_socket.app.transports.amqp.handler import AmqpServerPushHandler
from gos_web_socket.app.transports.amqp.pusher import AmqpPusher
from gos_web_socket.app.transports.canary import Canary
from gos_web_socket.settings.canary import CanarySettings
from gos_web_socket.settings.models import AmqpSettings
from tests.amqp.conftest import EventLog, RecordingServer, Supervise
from tests.support.rabbitmq import RabbitMQNode
from tests.support.waiting import eventually

INTERVAL, TIMEOUT = 3.0, 1.5


def health(*handlers: AmqpServerPushHandler) -> tuple[bool, list[str]]:
    """What /health answers for a server holding these handlers."""
    server: Any = SimpleNamespace(
        accepting=True,
        connections=0,
        push_handlers={f"amqp{i}": handler for i, handler in enumerate(handlers)},
    )
    ready, body = readiness(server)
    return ready, body["failing"]


async def test_deleted_queue_is_noticed_and_consumed_again(
    supervise: Supervise, pusher: AmqpPusher, rabbitmq: RabbitMQNode, amqp_settings: AmqpSettings
) -> None:
    """The shared queue deleted under a running handler (canary off): the broker's consumer
    cancel takes it out of /health at once, and it declares the queue and consumes again."""
    server = RecordingServer()
    off = CanarySettings(interval=0)
    handler, supervisor = await supervise(server, canary=off)
    await pusher.push({"n": 1}, "acme_topic", {"room": "1"})
    await eventually(lambda: len(server.received) == 1, within=10, every=0.01)
    seen_down: list[list[str]] = []

    def down() -> bool:
        ready, failing = health(handler)
        if not ready:
            seen_down.append(failing)
        return not ready

    deleted = await asyncio.to_thread(rabbitmq.ctl, "delete_queue", amqp_settings.queue_name)
    assert deleted.returncode == 0, deleted.stderr
    await eventually(lambda: bool(seen_down) or down(), within=10, every=0.001)
    assert seen_down[0] == ["push_handler amqp0: not consuming"]
    await eventually(lambda: handler.is_consuming and health(handler)[0], within=15, every=0.01)
    assert supervisor.states["amqp"].restarts == 1
    assert "cancelled consumer" in supervisor.states["amqp"].last_error
    await pusher.push({"n": 2}, "acme_topic", {"room": "1"})
    await eventually(lambda: len(server.received) == 2, within=10, every=0.01)
    assert server.counts() == {1: 1, 2: 1}


@pytest.mark.parametrize("canary_on", [True, False], ids=["canary", "no-canary"])
async def test_unbound_node_queue_is_reported_deaf_by_the_canary(
    canary_on: bool,
    supervise: Supervise,
    pusher: AmqpPusher,
    raw_channel: aio_pika.abc.AbstractChannel,
    amqp_settings: AmqpSettings,
    events: EventLog,
) -> None:
    """Node A's queue unbound from the exchange (per_node, node B still bound): with the
    canary A is reported deaf within two intervals, restarted, and hears again; without it
    A stays "ready" while pushes pass it by. Markers never reach a topic or push_success."""
    canary = CanarySettings(interval=INTERVAL if canary_on else 0, timeout=TIMEOUT)
    off = CanarySettings(interval=0)
    a_server, b_server = RecordingServer(), RecordingServer()
    a, supervisor = await supervise(a_server, node_id="a", queue_mode="per_node", canary=canary)
    # B only has to stay bound and hear; with the canary off it cannot go deaf on a loaded
    # machine (it drops A's markers all the same).
    b, _ = await supervise(b_server, node_id="b", queue_mode="per_node", canary=off)
    assert b.canary is None
    if canary_on:
        assert a.canary is not None
        await eventually(lambda: a.canary.returned >= 1, within=INTERVAL * 3, every=0.01)  # type: ignore[union-attr]
    else:
        assert a.canary is None
    assert health(a, b) == (True, [])

    queue = await raw_channel.get_queue(a.queue_name, ensure=False)
    await queue.unbind(amqp_settings.exchange_name, amqp_settings.binding_keys[0])
    unbound = time.monotonic()
    await pusher.push({"n": 1}, "acme_topic", {"room": "1"})
    await eventually(lambda: len(b_server.received) == 1, within=10, every=0.01)

    if not canary_on:
        await asyncio.sleep(2 * INTERVAL + TIMEOUT)  # nothing to wait for: nothing happens
        assert a.is_consuming and not a.deaf and health(a, b) == (True, [])
        assert a_server.received == [] and supervisor.states["amqp"].restarts == 0
        return

    assert a.canary is not None
    await eventually(lambda: a.deaf, within=2 * INTERVAL + 5, every=0.01)
    detected = time.monotonic() - unbound
    ready, failing = health(a, b)
    assert not ready
    assert "push_handler amqp0: deaf (a canary marker did not come back)" in failing
    assert a.canary.misses == 1
    await eventually(lambda: not a.deaf and a.is_consuming, 20, "re-declared, re-bound", every=0.01)
    assert supervisor.states["amqp"].restarts == 1
    assert "did not come back" in supervisor.states["amqp"].last_error
    assert health(a, b) == (True, [])
    await pusher.push({"n": 2}, "acme_topic", {"room": "1"})
    await eventually(
        lambda: len(a_server.received) == 1 and len(b_server.received) == 2, within=10, every=0.01
    )
    assert a_server.counts() == {2: 1} and b_server.counts() == {1: 1, 2: 1}
    assert len(events.success) == 3 and events.fail == []  # the pushes only, no marker
    print(f"deaf reported {detected:.1f} s after the unbind (interval {INTERVAL:g} s)")


async def test_a_canary_off_node_drops_the_markers_of_its_neighbour(
    supervise: Supervise, pusher: AmqpPusher, events: EventLog
) -> None:
    """per_node, node A's canary on and node B's off: A's markers reach B's queue too, and B
    drops them like A does: no push_fail, nothing at B's topic, only pushes counted."""
    on, off = CanarySettings(interval=0.5, timeout=0.5), CanarySettings(interval=0)
    a_server, b_server = RecordingServer(), RecordingServer()
    a, _ = await supervise(a_server, node_id="a", queue_mode="per_node", canary=on)
    b, _ = await supervise(b_server, node_id="b", queue_mode="per_node", canary=off)
    assert a.canary is not None and b.canary is None
    await eventually(lambda: a.canary.returned >= 3, within=30, every=0.01)  # type: ignore[union-attr]
    await pusher.push({"n": 1}, "acme_topic", {"room": "1"})
    await eventually(
        lambda: len(b_server.received) == 1 and len(a_server.received) == 1, within=10, every=0.01
    )
    assert events.fail == [] and len(events.success) == 2
    assert b.stats.received == 1 and b_server.counts() == {1: 1}


async def test_a_marker_lost_to_an_outage_is_not_deafness() -> None:
    """The connection drops while a marker is sent (the handler no longer consumes): the
    canary counts no miss and stops nothing; the outage is /health's "not consuming"."""
    consuming, sends, verdicts = [True], [0], list[PushHandlerError]()

    async def send(body: bytes) -> None:
        sends[0] += 1
        consuming[0] = False  # the broker goes away under the publish, and is back soon
        asyncio.get_running_loop().call_later(0.1, consuming.__setitem__, 0, True)
        raise ConnectionError("connection reset by peer")

    canary = Canary("a", send, 0.05, 0.05, verdicts.append, consuming=lambda: consuming[0])
    canary.start()
    try:
        await eventually(lambda: sends[0] >= 3, within=10, every=0.01)
    finally:
        await canary.stop()
    assert verdicts == [] and canary.misses == 0 and not canary.deaf


@dataclass
class SlowFlushServer(RecordingServer):
    """Its clients take ``stall`` seconds to be written to (a batch waits in the ack)."""

    stall: float = 0.0

    async def flushed(self) -> None:
        await asyncio.sleep(self.stall)


async def test_a_batch_held_up_in_its_ack_is_not_deafness(
    supervise: Supervise, pusher: AmqpPusher
) -> None:
    """A batch waits in flushed() three canary timeouts: the marker queued behind it is
    waited for, not counted deaf; the handler is not stopped mid-ack."""
    server = SlowFlushServer()
    canary = CanarySettings(interval=0.5, timeout=0.5)
    handler, supervisor = await supervise(server, canary=canary)
    assert handler.canary is not None
    await eventually(lambda: handler.canary.returned >= 1, within=30, every=0.01)  # type: ignore[union-attr]
    server.stall = 1.5
    await pusher.push({"n": 1}, "acme_topic", {"room": "1"})
    await eventually(lambda: len(server.received) == 1, within=10, every=0.01)
    returned = handler.canary.returned
    await eventually(lambda: handler.canary.returned >= returned + 2, within=30, every=0.01)  # type: ignore[union-attr]
    assert handler.canary.misses == 0 and not handler.deaf
    assert supervisor.states["amqp"].restarts == 0 and server.counts() == {1: 1}


async def test_an_unbound_second_binding_key_is_reported_deaf(
    supervise: Supervise,
    raw_channel: aio_pika.abc.AbstractChannel,
    amqp_settings: AmqpSettings,
) -> None:
    """per_node with two binding keys: markers take each key in turn, so node A's queue
    unbound from the second key only is reported deaf (restarted, bound again)."""
    keys = [*amqp_settings.binding_keys, "gos.extra"]
    canary = CanarySettings(interval=1.0, timeout=1.0)
    a, supervisor = await supervise(
        RecordingServer(), node_id="a", queue_mode="per_node", canary=canary, binding_keys=keys
    )
    assert a.canary is not None
    await eventually(lambda: a.canary.returned >= 2, within=30, every=0.01)  # type: ignore[union-attr]
    queue = await raw_channel.get_queue(a.queue_name, ensure=False)
    await queue.unbind(amqp_settings.exchange_name, "gos.extra")
    await eventually(lambda: a.canary.misses == 1, within=20, every=0.01)  # type: ignore[union-attr]
    await eventually(
        lambda: supervisor.states["amqp"].restarts == 1 and not a.deaf, within=30, every=0.01
    )
    assert "did not come back" in supervisor.states["amqp"].last_error
