"""The coalescing raw limits: the fastest Python WebSocket stacks with our per-turn coalescing.

The old raw limit (``bench/servers.py:RawServer``) writes once per subscriber per push; ours
writes once per subscriber per event-loop turn, so under load it beats that limit and the limit
no longer says how close we are to what Python can do. These systems do what ours does with the
least code each stack allows:

* **the consumer is ours, minus our code**: a bare aio-pika consumer on a durable queue with
  prefetch 100 whose callback only queues the message (before any await, as ours); a task takes
  what is queued in one batch (at most prefetch / 2, as ours), broadcasts each push, waits
  for the end-of-turn flush and acks the batch once (``multiple=True``), as ours. Or a bare
  ``zmq.asyncio`` PULL socket.
* **coalescing as ours**: a push's WAMP v1 EVENT is encoded once; the EVENTs of one loop turn
  are queued per topic and a ``loop.call_soon`` flush at the end of the turn writes each
  subscriber its frames of the turn in one go.
* ``PicowsServer``: picows (Cython) handshake and parsing; the turn's frames are framed and
  joined once per topic and every subscriber gets one ``transport.write`` of the same bytes.
  This is the floor: one syscall-bound write per subscriber per turn and nothing else.
* ``WebsocketsServer``: ``websockets`` (asyncio implementation, compression off); a turn with
  one EVENT goes out with ``websockets.broadcast()`` itself; with several, each subscriber's
  frames are serialised by its sans-I/O protocol (what ``broadcast()`` does per message) and
  written with one ``transport.write``.
"""

from __future__ import annotations

import asyncio
import json
import struct
from abc import ABC, abstractmethod
from typing import Any

from bench.agent import Agent
from bench.servers import listen_socket
from bench.wire import ROOM

WELCOME = b'[0,"raw",1,"raw"]'
PREFETCH = 100


def text_frame(payload: bytes) -> bytes:
    """One unmasked, final text frame (what a server sends)."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 65536:
        return struct.pack("!BBH", 0x81, 126, size) + payload
    return struct.pack("!BBQ", 0x81, 127, size) + payload


class CoalescingLimit(Agent, ABC):
    """Consumer, subscriptions and the per-turn flush; subclasses bring the WebSocket stack."""

    system = ""
    """The name in ``bench.runner.SYSTEM_TABLE``; the AMQP exchange and queue are ``bench_<it>``."""

    def __init__(self, transport: str, amqp_url: str = "", zmq_port: int = 0) -> None:
        self.transport = transport
        self.amqp_url = amqp_url
        self.zmq_port = zmq_port
        self.queue_name = f"bench_{self.system}"
        self.topics: dict[str, set[Any]] = {}
        self._turn: dict[str, list[bytes]] = {}
        self._flushed: asyncio.Future[None] | None = None
        self._closers: list[Any] = []
        self._tasks: list[asyncio.Task[None]] = []

    # -- the WebSocket side -----------------------------------------------------------------

    @abstractmethod
    async def listen(self) -> int:
        """Start the WebSocket server on a free port; return the port."""

    @abstractmethod
    def send(self, subscribers: set[Any], events: list[bytes]) -> None:
        """Write ``events`` (EVENT payloads, in order) to every subscriber, once each."""

    def subscribe(self, client: Any, message: bytes) -> None:
        msg = json.loads(message)
        if msg[0] == 5:
            self.topics.setdefault(msg[1], set()).add(client)
            client.subscribed.append(msg[1])

    def unsubscribe_all(self, client: Any) -> None:
        for topic in client.subscribed:
            self.topics.get(topic, set()).discard(client)

    # -- pushes -----------------------------------------------------------------------------

    def on_body(self, body: bytes) -> None:
        envelope = json.loads(body)
        topic = envelope["topic"]
        if topic not in self.topics:
            return
        event = json.dumps([8, topic, envelope["data"]], separators=(",", ":")).encode()
        if not self._turn:
            asyncio.get_running_loop().call_soon(self._flush)
        self._turn.setdefault(topic, []).append(event)

    def _flush(self) -> None:
        turn, self._turn = self._turn, {}
        for topic, events in turn.items():
            subscribers = self.topics.get(topic)
            if subscribers:
                self.send(subscribers, events)
        done, self._flushed = self._flushed, None
        if done is not None and not done.done():
            done.set_result(None)

    async def flushed(self) -> None:
        if not self._turn:
            return
        if self._flushed is None:
            self._flushed = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._flushed)

    # -- lifecycle --------------------------------------------------------------------------

    async def do_start(self) -> int:
        port = await self.listen()
        if self.transport == "amqp":
            await self._start_amqp()
        else:
            await self._start_zmq()
        return port

    async def _start_amqp(self) -> None:
        import aio_pika

        self.connection = await aio_pika.connect(self.amqp_url)
        channel = await self.connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=PREFETCH)
        exchange = await channel.declare_exchange(
            self.queue_name, aio_pika.ExchangeType.DIRECT, durable=True
        )
        queue = await channel.declare_queue(self.queue_name, durable=True)
        await queue.bind(exchange, routing_key=ROOM)
        inbox: asyncio.Queue[aio_pika.abc.AbstractIncomingMessage] = asyncio.Queue()

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            inbox.put_nowait(message)

        async def consume() -> None:
            while True:
                batch = [await inbox.get()]
                while len(batch) < PREFETCH // 2 and not inbox.empty():
                    batch.append(inbox.get_nowait())
                for message in batch:
                    self.on_body(message.body)
                await self.flushed()
                await batch[-1].ack(multiple=True)

        self._tasks.append(asyncio.create_task(consume()))
        await queue.consume(on_message)

    async def _start_zmq(self) -> None:
        import zmq
        import zmq.asyncio

        self.zctx = zmq.asyncio.Context()
        self.zctx.linger = 0
        pull = self.zctx.socket(zmq.PULL)
        pull.bind(f"tcp://127.0.0.1:{self.zmq_port}")

        async def receive() -> None:
            while True:
                self.on_body(await pull.recv())

        self._tasks.append(asyncio.create_task(receive()))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for closer in self._closers:
            closer()
        if hasattr(self, "connection"):
            await self.connection.close()
        if hasattr(self, "zctx"):
            self.zctx.destroy(linger=0)


class PicowsServer(CoalescingLimit):
    """picows in, one joined write of the turn's frames per subscriber out."""

    system = "picows"

    async def listen(self) -> int:
        from picows import (
            WSFrame,
            WSListener,
            WSMsgType,
            WSTransport,
            WSUpgradeRequest,
            WSUpgradeResponse,
            WSUpgradeResponseWithListener,
            ws_create_server,
        )

        server = self

        class Client(WSListener):  # type: ignore[misc]
            def __init__(self) -> None:
                self.subscribed: list[str] = []
                self.write: Any = None

            def on_ws_connected(self, transport: WSTransport) -> None:
                self.write = transport.underlying_transport.write
                transport.send(WSMsgType.TEXT, WELCOME)

            def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
                if frame.msg_type == WSMsgType.TEXT:
                    server.subscribe(self, frame.get_payload_as_bytes())
                elif frame.msg_type == WSMsgType.CLOSE:
                    transport.send_close(frame.get_close_code())
                    transport.disconnect()

            def on_ws_disconnected(self, transport: WSTransport) -> None:
                server.unsubscribe_all(self)

        def factory(request: WSUpgradeRequest) -> Any:
            offered = request.headers.get("Sec-WebSocket-Protocol", "")
            if "wamp" not in [p.strip() for p in offered.split(",")]:
                return Client()
            response = WSUpgradeResponse.create_101_response({"Sec-WebSocket-Protocol": "wamp"})
            return WSUpgradeResponseWithListener(response, Client())

        ws = await ws_create_server(factory, sock=listen_socket())
        self._closers.append(ws.close)
        port: int = ws.sockets[0].getsockname()[1]
        return port

    def send(self, subscribers: set[Any], events: list[bytes]) -> None:
        data = b"".join([text_frame(e) for e in events])
        for client in subscribers:
            client.write(data)


class WebsocketsServer(CoalescingLimit):
    """``websockets`` in, ``broadcast()`` (or its per-connection equivalent, joined) out."""

    system = "websockets"

    async def listen(self) -> int:
        from websockets.asyncio.server import ServerConnection, serve
        from websockets.exceptions import ConnectionClosed

        server = self

        async def handler(connection: ServerConnection) -> None:
            connection.subscribed = []  # type: ignore[attr-defined]
            await connection.send(WELCOME, text=True)
            try:
                async for message in connection:
                    server.subscribe(connection, message.encode())  # type: ignore[union-attr]
            except ConnectionClosed:
                pass  # the fleet drops its connections without a closing handshake
            finally:
                server.unsubscribe_all(connection)

        ws = await serve(
            handler,
            sock=listen_socket(),
            subprotocols=["wamp"],  # type: ignore[list-item]
            compression=None,
            ping_interval=None,
            max_queue=None,
        )
        self._closers.append(ws.close)
        port: int = ws.sockets[0].getsockname()[1]
        return port

    def send(self, subscribers: set[Any], events: list[bytes]) -> None:
        from websockets.asyncio.server import broadcast
        from websockets.protocol import OPEN

        if len(events) == 1:
            broadcast(subscribers, events[0], text=True)
            return
        for connection in subscribers:
            protocol = connection.protocol
            if protocol.state is not OPEN:
                continue
            for event in events:
                protocol.send_text(event)
            connection.transport.write(b"".join(protocol.data_to_send()))
