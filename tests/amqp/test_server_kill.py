"""SIGKILL of a server process draining an AMQP backlog: no confirmed push vanishes."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import aio_pika

from gos_web_socket.app.router import Router
from gos_web_socket.app.testing import WampTestClient
from gos_web_socket.app.transports.amqp.pusher import AmqpPusher
from gos_web_socket.settings.models import AmqpSettings
from tests.support.rabbitmq import RabbitMQNode
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
CHANNEL = "acme/channel/1"
BACKLOG = 6000

# The server: the demo topic, no push handler until the test says "go" on stdin (so the
# subscriber is there before the backlog drains), then the AMQP handler under a Supervisor.
SERVER = """
import asyncio, json, sys
from gos_web_socket.app.demo import AcmeRpc, AcmeTopic
from gos_web_socket.app.transports.amqp.handler import AmqpServerPushHandler
from gos_web_socket.app.transports.supervisor import Supervisor
from gos_web_socket.settings.models import AmqpSettings
from tests.support.server import make_server

async def main():
    settings = AmqpSettings(**json.loads(sys.argv[1]))
    server = make_server(topics=[AcmeTopic()], rpcs=[AcmeRpc()])
    await server.start(port=0)
    print(server.port, flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    handler = AmqpServerPushHandler(settings, server.router, server.dispatcher)
    await Supervisor({"amqp": handler}, server).start()
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_sigkill_of_a_draining_server_loses_no_push(
    amqp_settings: AmqpSettings, router: Router, rabbitmq: RabbitMQNode
) -> None:
    """6,000 confirmed pushes, the server SIGKILLed mid-drain: every push was either seen by
    the subscriber or is still in the queue (acks wait until the frames were written)."""
    async with AmqpPusher(amqp_settings, router) as pusher:
        for start in range(0, BACKLOG, 200):
            await asyncio.gather(
                *(
                    pusher.push({"n": i}, "acme_topic", {"room": "1"})
                    for i in range(start, start + 200)
                )
            )
    values = {**amqp_settings.model_dump(mode="json"), "password": "guest"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SERVER,
        json.dumps(values),
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    client: WampTestClient | None = None
    try:
        port = int(await asyncio.wait_for(process.stdout.readline(), 30))
        client = await WampTestClient.connect(f"ws://127.0.0.1:{port}/")
        client.subscribe(CHANNEL)
        await client.call("acme/rpc/echo", "subscribed")  # the server has the SUBSCRIBE
        process.stdin.write(b"go\n")
        await process.stdin.drain()
        await eventually(lambda: len(client.events) >= 1500, within=60, every=0.01)  # type: ignore[union-attr]
        process.send_signal(signal.SIGKILL)
        await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    await asyncio.sleep(0.5)  # the last frames the kernel still had for the client
    seen = {payload["n"] for topic, payload in client.events if topic == CHANNEL}
    await client.close()
    assert 1500 <= len(seen) < BACKLOG  # it was killed mid-drain
    for _ in range(40):  # the dead connection's unacked messages go back to ready
        if (await asyncio.to_thread(rabbitmq.queue_counts, amqp_settings.queue_name))[1] == 0:
            break
        await asyncio.sleep(0.25)
    left: set[int] = set()
    connection = await aio_pika.connect(rabbitmq.url)
    async with connection:
        queue = await (await connection.channel()).get_queue(amqp_settings.queue_name)
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            left.add(json.loads(message.body)["data"]["n"])
    lost = set(range(BACKLOG)) - seen - left
    print(
        f"\nserver SIGKILL: {len(seen)} seen, {len(left)} left in the queue "
        f"({len(seen & left)} of them seen too: at-least-once), lost {len(lost)}"
    )
    assert lost == set()
