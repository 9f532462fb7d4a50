"""Pushers, each in its own process: the producer side of every system.

* ``RawPusher``: bare aio-pika publish (persistent, mandatory, publisher confirms, pipelined) as
  ours does it, or a bare pyzmq PUSH.
* ``SioPusher``: a ``write_only`` ``AsyncAioPikaManager`` emitting to the room (confirms on, its
  default), python-socketio's documented way to emit from an external process.
* ``OursPusher``: our ``AmqpPusher`` / ``ZmqPusher`` ``push()``.

``burst`` pushes as fast as the pusher goes with ``window`` pushes in flight; ``rate`` pushes on a
fixed schedule so latency is measured at a known offered rate.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.agent import Agent
from bench.wire import ROOM, ROUTE, data, envelope


class BasePusher(Agent):
    async def push(self, seq: int, warmup: bool = False) -> None:
        raise NotImplementedError

    async def do_start(self) -> None:
        """Connect; nothing is pushed."""

    async def do_warmup(self) -> None:
        await self.push(-1, warmup=True)

    async def do_burst(self, count: int, window: int) -> dict[str, int]:
        gate = asyncio.Semaphore(window)

        async def one(seq: int) -> None:
            async with gate:
                await self.push(seq)

        t0 = time.monotonic_ns()
        await asyncio.gather(*(one(i) for i in range(count)))
        return {"t0": t0, "t1": time.monotonic_ns(), "sent": count}

    async def do_rate(self, rate: float, duration: float) -> dict[str, Any]:
        """Start one push every 1/rate s for ``duration`` s; return when all have finished."""
        loop = asyncio.get_running_loop()
        count = int(rate * duration)
        start = loop.time() + 0.05
        tasks = []
        t0 = time.monotonic_ns()
        for i in range(count):
            delay = start + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self.push(i)))
        late = loop.time() - (start + (count - 1) / rate)
        await asyncio.gather(*tasks)
        return {"t0": t0, "t1": time.monotonic_ns(), "sent": count, "late_s": round(late, 4)}


class RawPusher(BasePusher):
    def __init__(
        self, transport: str, amqp_url: str = "", zmq_port: int = 0, exchange: str = "bench_raw"
    ) -> None:
        self.transport = transport
        self.amqp_url = amqp_url
        self.zmq_port = zmq_port
        self.exchange_name = exchange

    async def do_start(self) -> None:
        if self.transport == "amqp":
            import aio_pika

            self.connection = await aio_pika.connect(self.amqp_url)
            channel = await self.connection.channel(publisher_confirms=True)
            self.exchange = await channel.declare_exchange(
                self.exchange_name, aio_pika.ExchangeType.DIRECT, durable=True
            )
            self.persistent = aio_pika.DeliveryMode.PERSISTENT
            self.message_cls = aio_pika.Message
        else:
            import zmq
            import zmq.asyncio

            self.zctx = zmq.asyncio.Context()
            self.zctx.linger = 0
            self.sock = self.zctx.socket(zmq.PUSH)
            self.sock.connect(f"tcp://127.0.0.1:{self.zmq_port}")

    async def push(self, seq: int, warmup: bool = False) -> None:
        body = envelope(seq, warmup)
        if self.transport == "amqp":
            message = self.message_cls(body, delivery_mode=self.persistent)
            await self.exchange.publish(message, routing_key=ROOM, mandatory=True)
        else:
            await self.sock.send(body)

    async def close(self) -> None:
        if hasattr(self, "connection"):
            await self.connection.close()
        if hasattr(self, "zctx"):
            self.zctx.destroy(linger=0)


class SioPusher(BasePusher):
    def __init__(self, amqp_url: str) -> None:
        self.amqp_url = amqp_url

    async def do_start(self) -> None:
        import socketio

        self.manager = socketio.AsyncAioPikaManager(
            self.amqp_url, channel="bench_sio", write_only=True
        )

    async def push(self, seq: int, warmup: bool = False) -> None:
        await self.manager.emit("push", data(seq, warmup), namespace="/", room=ROOM)

    async def close(self) -> None:
        if getattr(self.manager, "publisher_connection", None) is not None:
            await self.manager.publisher_connection.close()


class OursPusher(BasePusher):
    def __init__(
        self, transport: str, amqp_url: str = "", zmq_port: int = 0, tag: str = ""
    ) -> None:
        self.transport = transport
        self.amqp_url = amqp_url
        self.zmq_port = zmq_port
        self.tag = tag

    async def do_start(self) -> None:
        from bench.ours import make_pusher

        self.pusher = make_pusher(self.transport, self.amqp_url, self.zmq_port, self.tag)
        await self.pusher.push(data(-1, warmup=True), ROUTE, {"room": "nobody"})

    async def push(self, seq: int, warmup: bool = False) -> None:
        await self.pusher.push(data(seq, warmup), ROUTE, {"room": ROOM})

    async def close(self) -> None:
        if hasattr(self, "pusher"):
            await self.pusher.close()
