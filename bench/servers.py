"""The three systems under test, each run as an agent in its own process.

* ``RawServer``: the raw limit. Bare autobahn WebSocket protocol that keeps a set of WAMP v1
  subscribers, fed by a bare aio-pika consumer (durable queue, prefetch 100, ack after the
  broadcast: the broker does the same work as for ours)
  or a bare pyzmq PULL socket. Each push is decoded, encoded once as a WAMP EVENT, prepared once
  and written with a guarded ``transport.write`` per subscriber: the fastest correct loop
  (docs/reference performance §1.1).
* ``SioServer``: python-socketio ``AsyncServer`` on aiohttp with ``AsyncAioPikaManager`` on the
  same broker, as shipped (its listener uses prefetch 1); clients ``join`` a room.
* ``OursServer``: our ``WampServer`` with the AMQP or ZeroMQ server push handler.
* ``OursCliServer``: ``gos-websocket server`` as a process of its own (``server.workers``).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import socket
import sys
from typing import Any

from bench.agent import Agent
from bench.wire import ROOM


def listen_socket() -> socket.socket:
    """A bound, listening loopback socket on a free port."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(4096)
    sock.setblocking(False)
    return sock


class RawServer(Agent):
    """Bare aio-pika (or pyzmq) in, bare autobahn prepared broadcast out."""

    def __init__(self, transport: str, amqp_url: str = "", zmq_port: int = 0) -> None:
        self.transport = transport
        self.amqp_url = amqp_url
        self.zmq_port = zmq_port
        self.topics: dict[str, set[Any]] = {}
        self._closers: list[Any] = []

    async def do_start(self) -> int:
        from autobahn.asyncio.websocket import WebSocketServerFactory, WebSocketServerProtocol

        server = self

        class Protocol(WebSocketServerProtocol):  # type: ignore[misc]
            def onConnect(self, request: Any) -> str | None:  # noqa: N802
                return "wamp" if "wamp" in request.protocols else None

            def onOpen(self) -> None:  # noqa: N802
                self.subscribed: list[str] = []
                self.sendMessage(b'[0,"raw",1,"raw"]')

            def onMessage(self, payload: bytes, is_binary: bool) -> None:  # noqa: N802
                msg = json.loads(payload)
                if msg[0] == 5:
                    server.topics.setdefault(msg[1], set()).add(self)
                    self.subscribed.append(msg[1])

            def onClose(self, *args: Any) -> None:  # noqa: N802
                for topic in getattr(self, "subscribed", ()):
                    server.topics.get(topic, set()).discard(self)

        loop = asyncio.get_running_loop()
        self.factory = WebSocketServerFactory(loop=loop)
        self.factory.protocol = Protocol
        self.factory.setProtocolOptions(allowNullOrigin=True)
        ws = await loop.create_server(self.factory, sock=listen_socket())
        self._closers.append(ws.close)
        if self.transport == "amqp":
            await self._start_amqp()
        else:
            await self._start_zmq()
        port: int = ws.sockets[0].getsockname()[1]
        return port

    def broadcast(self, body: bytes) -> None:
        envelope = json.loads(body)
        subscribers = self.topics.get(envelope["topic"])
        if not subscribers:
            return
        event = json.dumps([8, envelope["topic"], envelope["data"]], separators=(",", ":"))
        frame = self.factory.prepareMessage(event.encode()).payloadHybi
        for proto in subscribers:
            transport = proto.transport
            if transport is not None and proto.state == proto.STATE_OPEN:
                transport.write(frame)

    async def _start_amqp(self) -> None:
        import aio_pika

        self.connection = await aio_pika.connect(self.amqp_url)
        channel = await self.connection.channel()
        await channel.set_qos(prefetch_count=100)
        exchange = await channel.declare_exchange(
            "bench_raw", aio_pika.ExchangeType.DIRECT, durable=True
        )
        queue = await channel.declare_queue("bench_raw", durable=True)
        await queue.bind(exchange, routing_key=ROOM)

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            self.broadcast(message.body)
            await message.ack()

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
                self.broadcast(await pull.recv())

        self.task = asyncio.create_task(receive())

    async def close(self) -> None:
        for closer in self._closers:
            closer()
        if self.transport == "amqp" and hasattr(self, "connection"):
            await self.connection.close()
        if hasattr(self, "task"):
            self.task.cancel()
            self.zctx.destroy(linger=0)


class SioServer(Agent):
    """python-socketio AsyncServer on aiohttp with AsyncAioPikaManager."""

    def __init__(self, amqp_url: str) -> None:
        self.amqp_url = amqp_url

    async def do_start(self) -> int:
        import socketio
        from aiohttp import web

        manager = socketio.AsyncAioPikaManager(self.amqp_url, channel="bench_sio")
        sio = socketio.AsyncServer(async_mode="aiohttp", client_manager=manager)

        @sio.event  # type: ignore[untyped-decorator]
        async def join(sid: str, room: str) -> str:
            await sio.enter_room(sid, room)
            return "ok"

        app = web.Application()
        sio.attach(app)
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self.runner.setup()
        sock = listen_socket()
        await web.SockSite(self.runner, sock).start()
        port: int = sock.getsockname()[1]
        return port

    async def close(self) -> None:
        if hasattr(self, "runner"):
            await self.runner.cleanup()


class OursServer(Agent):
    """Our server process as the container runs it, with the AMQP or ZeroMQ push handler.

    ``env`` is set in this process before the container is built: settings overrides the way
    an operator gives them (``GOS_WEB_SOCKET__SERVER__WORKERS=auto``), so a variant of ours is
    one entry in ``bench.runner.SYSTEM_TABLE``. ``gc_freeze=False`` undoes the start-up
    ``gc.freeze()`` of ``Runtime.start`` (the A/B of that change). ``code`` is a directory put
    first on ``sys.path`` before anything of ours is imported: with a ``gos_web_socket`` link to
    another checkout in it, this process runs that checkout's server (A/B in one run).
    """

    def __init__(
        self,
        transport: str,
        amqp_url: str = "",
        zmq_port: int = 0,
        env: dict[str, str] | None = None,
        gc_freeze: bool = True,
        code: str = "",
        tag: str = "",
        history: bool = False,
        stream: dict[str, Any] | None = None,
        turn_pushes: int = 0,
    ) -> None:
        self.turn_pushes = turn_pushes
        """Not 0: the memory budget's pushes per loop turn (``memory.TURN_PUSHES``), an A/B."""
        self.transport = transport
        self.amqp_url = amqp_url
        self.zmq_port = zmq_port
        self.env = env or {}
        self.gc_freeze = gc_freeze
        self.code = code
        self.tag = tag
        self.history = history
        self.stream = stream
        """Other ``pushers.amqp.stream`` settings in stream mode (``fill``, ``node_name``)."""

    async def do_start(self) -> int:
        if self.code:  # a directory holding a gos_web_socket link: that checkout's server
            sys.path.insert(0, self.code)
        from bench.ours import make_runtime

        os.environ.update(self.env)
        if self.turn_pushes:
            from gos_web_socket.app.server import memory

            memory.TURN_PUSHES = self.turn_pushes
        # Only when asked: a baseline checkout's make_runtime may not take them yet.
        extra = (self.tag, self.history) if self.tag or self.history else ()
        stream = {"stream": self.stream} if self.stream else {}
        self.runtime = make_runtime(self.transport, self.amqp_url, self.zmq_port, *extra, **stream)
        await self.runtime.start()
        if not self.gc_freeze:  # A/B: the heap as it was before Runtime.start froze it
            gc.unfreeze()
        server = self.runtime.server
        handler = next(iter(server.push_handlers.values()))
        deadline = asyncio.get_running_loop().time() + 30
        while not handler.is_consuming:  # the supervisor starts handlers in the background
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"our {self.transport} push handler is not consuming")
            await asyncio.sleep(0.05)
        port: int = server.port
        return port

    async def do_history(self) -> dict[str, int]:
        """What the server's recoveries did: by outcome, publications replayed, stream reads."""
        history = self.runtime.server.history
        backfill = history.backfill
        return {
            "recoveries_complete": history.recoveries[True],
            "recoveries_incomplete": history.recoveries[False],
            "replayed": history.replayed,
            "stream_reads": backfill.reads if backfill is not None else 0,
        }

    async def close(self) -> None:
        if hasattr(self, "runtime"):
            await self.runtime.stop()


class OursCliServer(Agent):
    """``gos-websocket server`` as ``make run`` starts it, in a process of its own under this
    agent: with ``server.workers`` above 1 it is the parent of the worker processes, which only
    the CLI starts (``app/workers.py``). Settings are given the way an operator gives them:
    ``GOS_WEB_SOCKET__...`` variables (``env`` adds the variant's, e.g. the worker count).
    The runner's CPU and RSS figures add up the server process and its workers (``do_pid``),
    not this agent, which only waits for the runner's commands.
    """

    def __init__(
        self,
        transport: str,
        amqp_url: str = "",
        zmq_port: int = 0,
        env: dict[str, str] | None = None,
        **_ignored: Any,
    ) -> None:
        self.transport = transport
        self.amqp_url = amqp_url
        self.zmq_port = zmq_port
        self.env = env or {}
        self.proc: asyncio.subprocess.Process | None = None

    def _environment(self, ws_port: int, ops_port: int) -> dict[str, str]:
        from urllib.parse import urlsplit

        settings = {
            "SERVER__HOST": "127.0.0.1",
            "SERVER__PORT": str(ws_port),
            "SERVER__HTTP__PORT": "0",
            "SERVER__METRICS__HOST": "127.0.0.1",
            "SERVER__METRICS__PORT": str(ops_port),
            "PUSHERS__WAMP__ENABLED": "false",
            "PUSHERS__ZMQ__ENABLED": "false",
            "PUSHERS__AMQP__ENABLED": "false",
            "LOGGING__LEVEL": "warning",
        }
        if self.transport == "amqp":
            parts = urlsplit(self.amqp_url)
            settings |= {
                "PUSHERS__AMQP__ENABLED": "true",
                "PUSHERS__AMQP__HOST": parts.hostname or "127.0.0.1",
                "PUSHERS__AMQP__PORT": str(parts.port or 5672),
                "PUSHERS__AMQP__LOGIN": parts.username or "guest",
                "PUSHERS__AMQP__PASSWORD": parts.password or "guest",
            }
        elif self.transport == "zmq":
            settings |= {
                "PUSHERS__ZMQ__ENABLED": "true",
                "PUSHERS__ZMQ__HOST": "127.0.0.1",
                "PUSHERS__ZMQ__PORT": str(self.zmq_port),
                "PUSHERS__ZMQ__LINGER": "0",
            }
        else:
            raise ValueError(f"OursCliServer: transport {self.transport!r} (amqp or zmq)")
        env = dict(os.environ)  # PYTHONPATH: a worktree's gos_web_socket alias reaches the CLI
        env |= {f"GOS_WEB_SOCKET__{key}": value for key, value in settings.items()}
        return env | self.env

    async def do_start(self) -> int:
        import tempfile

        from bench.runner import free_port
        from gos_web_socket.app.ops import check_health

        ws_port, ops_port = free_port(), free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="gos-bench-cli-", suffix=".log")  # noqa: SIM115
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gos_web_socket.app",
            "server",
            env=self._environment(ws_port, ops_port),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        body: dict[str, Any] = {}
        while body.get("status") != "ready":  # every worker up and its push handler consuming
            if self.proc.returncode is not None or loop.time() > deadline:
                self.log.seek(0)
                tail = self.log.read()[-2000:].decode(errors="replace")
                raise RuntimeError(f"gos-websocket server not ready ({body}):\n{tail}")
            await asyncio.sleep(0.1)
            try:
                _status, body = await asyncio.to_thread(check_health, "127.0.0.1", ops_port, 2.0)
            except OSError:
                body = {}
        return ws_port

    async def do_pid(self) -> int:
        """The pid of ``gos-websocket server`` itself: the runner counts the CPU of that process
        and its workers, not this agent's."""
        assert self.proc is not None
        return self.proc.pid

    async def close(self) -> None:
        """SIGTERM, as an operator stops it (the parent stops its workers); SIGKILL after 15 s."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if hasattr(self, "log"):
            self.log.close()
