"""Crash accounting (issue #29): a server SIGKILLed mid-backlog, then a new one drains the rest.

One trial: ``backlog`` confirmed pushes wait in the shared queue; server 1 (a subprocess, its
subscriber connected before it consumes) is SIGKILLed once the subscriber saw ``kill_after``;
the queue's content is read without acking (so it stays: ``left``); server 2, with a new
subscriber connected first, drains it. Then every push is accounted for:

- ``lost_unacked``: left in the queue after the kill (server 1 had not acked) and never seen by
  the second subscriber: what the issue reported. Ungated (``--ungated --delay D``), these are
  exactly ``before_subscribe``, the first requeued pushes, handled before the subscriber was
  back (docs/amqp.md);
- ``acked_unwritten``: acked by server 1 and never seen by its subscriber (frames still in the
  process's buffers at the SIGKILL);
- ``repeats``: seen by both subscribers (at-least-once).

Run ten trials: ``.venv/bin/python -m tests.amqp.crash --trials 10``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aio_pika

from gos_web_socket.app.testing import WampTestClient
from gos_web_socket.app.transports.amqp.pusher import AmqpPusher
from gos_web_socket.settings.models import AmqpSettings
from tests.amqp.conftest import make_router
from tests.amqp.test_server_kill import SERVER
from tests.support.rabbitmq import RabbitMQNode
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
CHANNEL = "acme/channel/1"


@dataclass
class Trial:
    backlog: int
    seen_first: int
    left: int
    seen_second: int
    lost_unacked: int
    acked_unwritten: int
    repeats: int
    before_subscribe: int
    """Of the unacked pushes, those that come before the first one the second subscriber saw
    (queue order): handled by the restarted server before its subscriber was there."""

    def line(self) -> str:
        return (
            f"backlog {self.backlog}: first server's subscriber saw {self.seen_first}, "
            f"{self.left} left unacked, second saw {self.seen_second}; lost unacked "
            f"{self.lost_unacked}, acked but unwritten {self.acked_unwritten}, "
            f"repeats {self.repeats}; handled before the subscriber was back "
            f"{self.before_subscribe}"
        )


class ServerProcess:
    """The test's server in a subprocess with one subscriber that connects before it consumes."""

    def __init__(self, settings: AmqpSettings, gated: bool = True, delay: float = 0.0) -> None:
        self.gated = gated
        """False: the server consumes at once and its subscriber connects afterwards, as
        clients reconnecting to a restarted server do."""
        self.delay = delay
        """Ungated: seconds between the server's start of consuming and its subscriber's
        connect (a client's reconnect back-off)."""
        self.values = {**settings.model_dump(mode="json"), "password": "guest"}
        self.process: asyncio.subprocess.Process | None = None
        self.client: WampTestClient | None = None

    async def start(self) -> WampTestClient:
        self.process = process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            SERVER,
            json.dumps(self.values),
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert process.stdin is not None and process.stdout is not None
        port = int(await asyncio.wait_for(process.stdout.readline(), 30))
        if not self.gated:
            process.stdin.write(b"go\n")
            await process.stdin.drain()
            await asyncio.sleep(self.delay)
        self.client = client = await WampTestClient.connect(f"ws://127.0.0.1:{port}/")
        client.subscribe(CHANNEL)
        await client.call("acme/rpc/echo", "subscribed")  # the server has the SUBSCRIBE
        if self.gated:
            process.stdin.write(b"go\n")
            await process.stdin.drain()
        return client

    def seen(self) -> set[int]:
        assert self.client is not None
        return {payload["n"] for topic, payload in self.client.events if topic == CHANNEL}

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()
        await asyncio.sleep(0.5)  # the last frames the kernel still had for the client
        if self.client is not None:
            await self.client.close()


async def peek(rabbitmq: RabbitMQNode, queue_name: str) -> set[int]:
    """The pushes waiting in the queue, taken without an ack (they go back when we close)."""
    for _ in range(80):  # the dead connection's unacked messages go back to ready first
        if (await asyncio.to_thread(rabbitmq.queue_counts, queue_name))[1] == 0:
            break
        await asyncio.sleep(0.25)
    left: set[int] = set()
    async with await aio_pika.connect(rabbitmq.url) as connection:
        queue = await (await connection.channel()).get_queue(queue_name)
        while (message := await queue.get(no_ack=False, fail=False)) is not None:
            left.add(json.loads(message.body)["data"]["n"])
    return left


async def trial(
    rabbitmq: RabbitMQNode,
    settings: AmqpSettings,
    backlog: int = 2000,
    kill_after: int = 500,
    gated: bool = True,
    delay: float = 0.0,
) -> Trial:
    async with AmqpPusher(settings, make_router()) as pusher:
        for start in range(0, backlog, 200):
            await asyncio.gather(
                *(
                    pusher.push({"n": i}, "acme_topic", {"room": "1"})
                    for i in range(start, min(backlog, start + 200))
                )
            )
    first, second = ServerProcess(settings), ServerProcess(settings, gated, delay)
    try:
        client = await first.start()
        await eventually(lambda: len(client.events) >= kill_after, within=60, every=0.01)
        await first.kill()
        seen_first = first.seen()
        left = await peek(rabbitmq, settings.queue_name)
        await second.start()
        await eventually(lambda: left <= second.seen(), within=60 if gated else 10, every=0.01)
    except AssertionError:
        pass
    finally:
        await first.kill()
        await second.kill()
    seen_second = second.seen()
    acked = set(range(backlog)) - left
    first_seen = min(left & seen_second, default=backlog)
    return Trial(
        backlog,
        len(seen_first),
        len(left),
        len(seen_second),
        len(left - seen_second),
        len(acked - seen_first - seen_second),
        len(seen_first & seen_second),
        sum(1 for n in left if n < first_seen),
    )


async def main(trials: int, backlog: int, gated: bool, delay: float) -> int:
    rabbitmq = RabbitMQNode()
    rabbitmq.start()
    missing = 0
    try:
        for number in range(1, trials + 1):
            settings = rabbitmq.amqp_settings(push_timeout=30, reconnect_interval=0.5)
            started = time.monotonic()
            result = await trial(rabbitmq, settings, backlog, gated=gated, delay=delay)
            missing += result.lost_unacked + result.acked_unwritten
            print(f"trial {number}: {result.line()} ({time.monotonic() - started:.1f} s)")
    finally:
        rabbitmq.stop()
    print(f"{trials} trials: {missing} confirmed pushes never reached a subscriber")
    return 1 if missing else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--backlog", type=int, default=2000)
    parser.add_argument(
        "--ungated",
        action="store_true",
        help="the restarted server consumes before its subscriber is back (the issue's setup)",
    )
    parser.add_argument(
        "--delay",
        type=float,
        default=0.0,
        help="with --ungated: seconds the subscriber takes to come back after the restart",
    )
    arguments = parser.parse_args()
    gated = not arguments.ungated
    sys.exit(asyncio.run(main(arguments.trials, arguments.backlog, gated, arguments.delay)))
