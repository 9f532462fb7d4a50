"""queue_mode: stream against the real broker: every node reads every push once, from its offset."""

from __future__ import annotations

import json

import aio_pika
import pytest

from gos_web_socket.app.exceptions import ConfigurationError
from gos_web_socket.app.push import Push, PushMode
from gos_web_socket.app.transports.amqp.pusher import AmqpPusher
from gos_web_socket.app.transports.amqp.stream import AmqpStreamReceiver
from gos_web_socket.settings.models import AmqpSettings
from tests.amqp.conftest import RecordingServer, dead_letters
from tests.streams.conftest import StartNode
from tests.support.rabbitmq import RabbitMQNode
from tests.support.waiting import eventually


async def push_range(pusher: AmqpPusher, start: int, stop: int) -> None:
    for n in range(start, stop):
        await pusher.push({"n": n}, "acme_topic", {"room": "1"})


def numbers(server: RecordingServer) -> list[int]:
    return [data["n"] for _, data in server.received]


async def test_two_nodes_each_get_every_push_once(
    pusher: AmqpPusher, start_node: StartNode
) -> None:
    """Two nodes reading one stream both deliver all 300 pushes, once each, in order."""
    a, b = RecordingServer(), RecordingServer()
    await start_node(a, "a")
    await start_node(b, "b")
    await push_range(pusher, 0, 300)
    await eventually(
        lambda: len(a.received) >= 300 and len(b.received) >= 300, within=10, every=0.01
    )
    assert numbers(a) == list(range(300))
    assert numbers(b) == list(range(300))


async def test_a_restarted_node_resumes_after_its_last_offset(
    pusher: AmqpPusher, start_node: StartNode, stream_settings: AmqpSettings
) -> None:
    """A node stopped while 200 pushes go out handles exactly those after its restart."""
    server = RecordingServer()
    node = await start_node(server, "a")
    await push_range(pusher, 0, 100)
    await eventually(lambda: len(server.received) >= 100, within=10, every=0.01)
    await node.close()
    saved = json.loads(next((stream_settings.stream.state_dir).glob("*.json")).read_text())
    await push_range(pusher, 100, 300)
    restarted = RecordingServer()
    node = await start_node(restarted, "a")
    assert isinstance(node.amqp, AmqpStreamReceiver)
    assert node.amqp.start == node.amqp.resume_at == saved["offset"] + 1
    await eventually(lambda: len(restarted.received) >= 200, within=10, every=0.01)
    await push_range(pusher, 300, 310)
    await eventually(lambda: len(restarted.received) >= 210, within=10, every=0.01)
    assert numbers(server) == list(range(100))
    assert numbers(restarted) == list(range(100, 310))


async def test_a_new_node_starts_at_the_end(pusher: AmqpPusher, start_node: StartNode) -> None:
    """A node without an offset file reads only pushes made after it started."""
    await push_range(pusher, 0, 20)
    server = RecordingServer()
    await start_node(server, "fresh")
    await push_range(pusher, 20, 30)
    await eventually(lambda: len(server.received) >= 10, within=10, every=0.01)
    assert numbers(server) == list(range(20, 30))


async def test_a_recreated_stream_changes_the_epoch_and_is_read_from_its_start(
    pusher: AmqpPusher, start_node: StartNode, stream_settings: AmqpSettings, rabbitmq: RabbitMQNode
) -> None:
    """After the stream is deleted and declared again, a node reads it all under a new epoch."""
    server = RecordingServer()
    node = await start_node(server, "a")
    await push_range(pusher, 0, 50)
    await eventually(lambda: len(server.received) >= 50, within=10, every=0.01)
    assert isinstance(node.amqp, AmqpStreamReceiver)
    old_epoch = node.amqp.epoch
    await node.close()
    await pusher.close()
    connection = await aio_pika.connect(rabbitmq.url)
    channel = await connection.channel()
    await channel.queue_delete(node.amqp.queue_name)
    await connection.close()
    await push_range(pusher, 50, 60)  # the pusher declares the stream again
    again = RecordingServer()
    node = await start_node(again, "a")
    await eventually(lambda: len(again.received) >= 10, within=10, every=0.01)
    assert isinstance(node.amqp, AmqpStreamReceiver)
    assert node.amqp.start == "first"
    assert node.amqp.epoch not in (None, old_epoch)
    assert numbers(again) == list(range(50, 60))


async def test_two_processes_cannot_share_one_offset_file(
    start_node: StartNode,
) -> None:
    """A second handler with the same node name is refused with a line naming the setting."""
    await start_node(RecordingServer(), "same")
    with pytest.raises(ConfigurationError, match="pushers.amqp.stream.node_name"):
        await start_node(RecordingServer(), "same")


async def test_a_poison_push_is_dead_lettered_and_passed(
    pusher: AmqpPusher,
    start_node: StartNode,
    stream_settings: AmqpSettings,
    rabbitmq: RabbitMQNode,
) -> None:
    """A push whose topic fails lands in the dead-letter queue; the next push still arrives."""
    server = RecordingServer()
    await start_node(server, "a")
    await pusher.push({"boom": True}, "acme_topic", {"room": "1"})
    await push_range(pusher, 0, 1)
    await eventually(lambda: len(server.received) >= 1, within=10, every=0.01)
    connection = await aio_pika.connect(rabbitmq.url)
    try:
        channel = await connection.channel()
        # the dead letter is confirmed before the push is passed
        dead = await dead_letters(channel, stream_settings.dead_letter_queue, within=6, every=0.1)
    finally:
        await connection.close()
    assert [json.loads(body)["data"] for body in dead] == [{"boom": True}]


class FillRecorder(RecordingServer):
    """Records, for every push, whether it came as a history refill."""

    def __init__(self) -> None:
        super().__init__()
        self.refills: list[bool] = []

    async def on_push(self, push: Push) -> None:
        self.refills.append(push.mode is PushMode.REFILL)
        await super().on_push(push)


async def test_a_restarted_node_refills_what_it_handled_before(
    pusher: AmqpPusher, start_node: StartNode, stream_settings: AmqpSettings
) -> None:
    """With stream.fill 30, a restarted node reads its last 30 pushes back as refills (for
    history only), then the ones it missed as live pushes, each once."""
    stream = stream_settings.stream.model_copy(update={"fill": 30})
    node = await start_node(RecordingServer(), "a", stream=stream)
    await push_range(pusher, 0, 100)
    await eventually(lambda: node.stats.received >= 100, within=10, every=0.01)
    await node.close()
    await push_range(pusher, 100, 150)
    server = FillRecorder()
    node = await start_node(server, "a", stream=stream)
    await eventually(lambda: len(server.received) >= 80, within=10, every=0.01)
    assert numbers(server) == list(range(70, 150))
    assert server.refills == [True] * 30 + [False] * 50
    assert node.stats.received == 50  # refills are not counted as pushes
