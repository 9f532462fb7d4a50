"""The /metrics endpoint of a real server fed by real clients and a real broker."""

from __future__ import annotations

import aio_pika
import pytest

from gos_web_socket.app.exceptions import RoutingError
from gos_web_socket.app.message import Message
from gos_web_socket.app.metrics import subscriptions
from gos_web_socket.app.testing import WampTestClient
from gos_web_socket.settings.models import AmqpSettings
from tests.ops.conftest import amqp_settings, http_get, ops_stack, scrape
from tests.support.rabbitmq import RabbitMQNode
from tests.support.waiting import eventually, settles

AMQP = '{handler="amqp",transport="amqp"}'
PUSHER = '{pusher="amqp",transport="amqp"}'


async def publish_raw(
    rabbitmq: RabbitMQNode, amqp: AmqpSettings, bodies: list[tuple[bytes, str]]
) -> None:
    """Publish ``(body, message_id)`` pairs as they are, bypassing the pusher."""
    connection = await aio_pika.connect(rabbitmq.url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(amqp.exchange_name)
        for body, message_id in bodies:
            message = aio_pika.Message(body, message_id=message_id)
            await exchange.publish(message, routing_key="")


async def test_metrics_report_exactly_the_traffic(rabbitmq: RabbitMQNode) -> None:
    """3 clients, 3 subscriptions, 4 pushes, a redelivery and a poison body: exact counts."""
    amqp = amqp_settings(rabbitmq)
    async with ops_stack(amqp) as stack:
        assert stack.pusher is not None
        a, b, c = [await WampTestClient.connect(stack.ws_url) for _ in range(3)]
        a.subscribe("acme/channel/1")
        a.subscribe("acme/channel/2")
        b.subscribe("acme/channel/1")
        await eventually(lambda: subscriptions(stack.server) == 3, what="3 subscriptions")

        for n in range(4):
            await stack.pusher.push({"n": n}, "acme_topic", {"room": "1"})
        with pytest.raises(RoutingError):
            await stack.pusher.push({"n": -1}, "no_such_route")
        same = Message.create("acme/channel/1", {"n": 4}).encode()
        await publish_raw(rabbitmq, amqp, [(same, "m1"), (same, "m1"), (b"{poison", "m2")])

        for client in (a, b):
            assert [await client.next_event("acme/channel/1") for _ in range(5)] == [
                {"n": n} for n in range(5)
            ]
        await c.close()

        expected = {
            "gos_websocket_connections": 2,
            "gos_websocket_subscriptions": 3,
            "gos_websocket_topics": 2,
            "gos_websocket_connections_opened_total": 3,
            "gos_websocket_frames_received_total": 3,  # the SUBSCRIBEs
            "gos_websocket_frames_sent_total": 3 + 5 * 2,  # WELCOMEs, 5 EVENTs to 2 clients
            "gos_websocket_clients_cut_off_total": 0,
            "gos_websocket_accepting": 1,
            f"gos_websocket_pushes_received_total{AMQP}": 7,
            f"gos_websocket_pushes_handled_total{AMQP}": 5,
            f"gos_websocket_pushes_failed_total{AMQP}": 1,
            f"gos_websocket_pushes_deduplicated_total{AMQP}": 1,
            f"gos_websocket_push_handler_reconnects_total{AMQP}": 0,
            f"gos_websocket_push_handler_consuming{AMQP}": 1,
            f"gos_websocket_push_broadcast_seconds_count{AMQP}": 5,
            f"gos_websocket_pusher_sent_total{PUSHER}": 4,
            f"gos_websocket_pusher_failed_total{PUSHER}": 1,
        }

        async def reported() -> dict[str, float] | None:
            samples = await scrape(stack.ops.port)
            return samples if all(samples.get(k) == v for k, v in expected.items()) else None

        try:
            samples = await settles(reported, within=10)
        except AssertionError:
            samples = await scrape(stack.ops.port)
            assert {k: samples.get(k) for k in expected} == expected
        inf = (
            'gos_websocket_push_broadcast_seconds_bucket{handler="amqp",le="+Inf",transport="amqp"}'
        )
        assert samples[inf] == 5
        await a.close()
        await b.close()


async def test_metrics_are_served_as_prometheus_text() -> None:
    """The endpoint answers with the 0.0.4 text content type and HELP/TYPE lines."""
    async with ops_stack() as stack:
        status, text = await http_get(stack.ops.port, "/metrics")
        assert status == 200
        assert "# TYPE gos_websocket_connections gauge" in text
        assert "# TYPE gos_websocket_frames_sent_total counter" in text
        status, _ = await http_get(stack.ops.port, "/index.html")
        assert status == 404  # the ops port serves no files
