"""Stream mode across nodes: 500 updates published over HTTP on node A while a subscriber of
node B was away are replayed by B, in order, once, from the id it saw last."""

from __future__ import annotations

from pathlib import Path

from gos_web_socket.settings.pushers import AmqpSettings, StreamSettings
from tests.sse.conftest import hub_server, subscribed
from tests.sse.test_replay import BOOK, publish_many
from tests.support.rabbitmq import RabbitMQNode
from tests.support.waiting import eventually


def stream_node(base: AmqpSettings, name: str) -> AmqpSettings:
    """``base`` as node ``name`` (its own offset file)."""
    return base.model_copy(update={"stream": base.stream.model_copy(update={"node_name": name})})


async def test_500_missed_updates_replay_on_another_node(
    rabbitmq: RabbitMQNode, tmp_path: Path
) -> None:
    """Published on A (forwarded through the stream), missed by B's subscriber, replayed by B."""
    base = rabbitmq.amqp_settings(
        push_timeout=15,
        reconnect_interval=0.5,
        queue_mode="stream",
        prefetch_count=50,
        stream=StreamSettings(state_dir=tmp_path / "state", probe_timeout=0.3, fill=0),
    )
    mercure = {"forward": "amqp"}
    async with (
        hub_server(mercure, pushers={"amqp": stream_node(base, "a")}) as node_a,
        hub_server(mercure, pushers={"amqp": stream_node(base, "b")}) as node_b,
    ):
        for node in (node_a, node_b):
            handler = node.push_handlers["amqp"]
            await eventually(lambda h=handler: h.is_consuming, within=30, what="consumer")
        async with subscribed(node_b, f"topic={BOOK}") as reader:
            (seen,) = await publish_many(node_a, 1, "seen", given_ids=False)
            (event,) = await reader.wait(1, timeout=20)
            assert event.id == seen
        missed = await publish_many(node_a, 500, "m", given_ids=False)

        def kept() -> int:
            history = node_b.history.channel(BOOK)
            return 0 if history is None else len(history)

        await eventually(lambda: kept() >= 501, within=60, what="node B read the stream")
        async with subscribed(node_b, f"topic={BOOK}", {"Last-Event-ID": seen}) as reader:
            assert reader.response.headers["last-event-id"] == seen
            events = await reader.wait(500, timeout=30)
            assert [e.id for e in events] == missed
            assert [e.data for e in events[:2]] == ["m0", "m1"]
            (sentinel,) = await publish_many(node_a, 1, "sentinel", given_ids=False)
            after = await reader.wait(501, timeout=30)
            assert after[500].id == sentinel  # nothing twice before it
