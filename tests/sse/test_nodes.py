"""``mercure.forward: amqp``: an HTTP publish on one node travels through RabbitMQ to every
node (per_node queues), with one id everywhere, usable as ``Last-Event-ID`` on any node."""

from __future__ import annotations

from gos_web_socket.app.testing import WampTestClient
from tests.sse.conftest import hub_server, publish, subscribed
from tests.support.rabbitmq import RabbitMQNode
from tests.support.server import url_of
from tests.support.waiting import eventually

BOOK = "https://example.com/books/1"


async def test_an_http_publish_reaches_sse_and_wamp_subscribers_on_both_nodes(
    rabbitmq: RabbitMQNode,
) -> None:
    """Published on node A: SSE subscribers on A and B and a WAMP v1 subscriber on B get it
    with the id A answered; B replays from that id after a reconnect."""
    amqp = rabbitmq.amqp_settings(queue_mode="per_node", push_timeout=15)
    mercure = {"forward": "amqp"}
    async with (
        hub_server(mercure, pushers={"amqp": amqp}) as node_a,
        hub_server(mercure, pushers={"amqp": amqp}) as node_b,
    ):
        for node in (node_a, node_b):
            handler = node.push_handlers["amqp"]
            await eventually(lambda h=handler: h.is_consuming, within=20, what="consumer")
        v1 = await WampTestClient.connect(url_of(node_b))
        try:
            async with (
                subscribed(node_a, f"topic={BOOK}") as on_a,
                subscribed(node_b, f"topic={BOOK}") as on_b,
            ):
                v1.subscribe(BOOK)
                await eventually(lambda: len(node_b.topics[BOOK]) == 2)
                answer = await publish(node_a, [("topic", BOOK), ("data", "across")])
                assert answer.status_code == 200 and answer.text.startswith("urn:uuid:")
                for reader in (on_a, on_b):
                    (event,) = await reader.wait(1, timeout=20)
                    assert (event.data, event.id) == ("across", answer.text)
                assert await v1.next_event(BOOK, timeout=20) == "across"
            later = await publish(node_a, [("topic", BOOK), ("data", "later"), ("id", "l-1")])
            assert later.text == "l-1"
            await eventually(lambda: v1.unread_events() != [], within=20)
            cursor = {"Last-Event-ID": answer.text}
            async with subscribed(node_b, f"topic={BOOK}", cursor) as again:
                assert again.response.headers["last-event-id"] == answer.text
                (event,) = await again.wait(1)
                assert (event.data, event.id) == ("later", "l-1")
        finally:
            await v1.close()
