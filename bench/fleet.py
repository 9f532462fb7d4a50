"""A fleet of WebSocket subscribers in one process (picows, the fastest asyncio client).

The same client code measures every system; only the dialect differs:

* ``wamp``: WAMP v1 (ours and the raw limit): subprotocol ``wamp``, then SUBSCRIBE to the channel.
* ``sio``: Engine.IO 4 / Socket.IO 5 over a bare WebSocket (no polling): ``40`` to connect the
  namespace, then ``join`` with an ack; Engine.IO pings are answered.

Every push frame is counted (``t > 0``) with its receive time; in latency mode the push-to-receive
delay is recorded too.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from bench.agent import Agent
from bench.wire import CHANNEL, ROOM, stamp

SUBSCRIBE = f'[5,"{CHANNEL}"]'.encode()
SIO_JOIN = f'421["join","{ROOM}"]'.encode()
MAX_SAMPLES = 2_000_000


class Stats:
    """Counters shared by all connections of the fleet."""

    def __init__(self) -> None:
        self.reset(False)

    def reset(self, latency: bool) -> None:
        self.latency = latency
        self.count = 0
        self.first = 0
        self.last = 0
        self.samples: list[int] = []


class Subscriber(WSListener):  # type: ignore[misc]
    """One connection; ``ready`` once a warm-up push came through."""

    def __init__(self, stats: Stats, dialect: str) -> None:
        self.stats = stats
        self.sio = dialect == "sio"
        self.ready = False
        self.joined = not self.sio
        self.closed = False

    def on_ws_connected(self, transport: WSTransport) -> None:
        if not self.sio:
            transport.send(WSMsgType.TEXT, SUBSCRIBE)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.closed = True

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type != WSMsgType.TEXT:
            return
        payload = frame.get_payload_as_bytes()
        if self.sio and not payload.startswith(b"42"):
            self._control(transport, payload)
            return
        t = stamp(payload)
        if t < 0:
            return
        self.ready = True
        if t == 0:
            return
        stats = self.stats
        now = time.monotonic_ns()
        stats.count += 1
        if not stats.first:
            stats.first = now
        stats.last = now
        if stats.latency and len(stats.samples) < MAX_SAMPLES:
            stats.samples.append(now - t)

    def _control(self, transport: WSTransport, payload: bytes) -> None:
        """Engine.IO / Socket.IO handshake and keep-alive."""
        if payload == b"2":
            transport.send(WSMsgType.TEXT, b"3")
        elif payload.startswith(b"0{"):
            transport.send(WSMsgType.TEXT, b"40")
        elif payload.startswith(b"40"):
            transport.send(WSMsgType.TEXT, SIO_JOIN)
        elif payload.startswith(b"431"):
            self.joined = True


class Fleet(Agent):
    """Opens, counts and closes subscribers on the parent's command."""

    def __init__(self) -> None:
        self.stats = Stats()
        self.subs: list[Subscriber] = []
        self.transports: list[WSTransport] = []

    async def do_connect(self, url: str, dialect: str, n: int, parallel: int = 50) -> int:
        """Open ``n`` more connections, ``parallel`` handshakes at a time; return how many."""
        headers = {"Sec-WebSocket-Protocol": "wamp"} if dialect == "wamp" else None
        gate = asyncio.Semaphore(parallel)

        async def one() -> None:
            async with gate:
                transport, listener = await ws_connect(
                    lambda: Subscriber(self.stats, dialect), url, extra_headers=headers
                )
                self.subs.append(listener)
                self.transports.append(transport)

        results = await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise RuntimeError(f"{len(errors)} of {n} connections failed: {errors[0]!r}")
        for _ in range(600):  # Socket.IO joins are acknowledged; wait up to 30 s for them
            if all(s.joined for s in self.subs):
                break
            await asyncio.sleep(0.05)
        return sum(s.joined and not s.closed for s in self.subs)

    async def do_ready(self) -> int:
        """How many open connections have received a warm-up push."""
        return sum(s.ready and not s.closed for s in self.subs)

    async def do_reset(self, latency: bool) -> None:
        self.stats.reset(latency)

    async def do_count(self) -> int:
        return self.stats.count

    async def do_collect(self) -> dict[str, Any]:
        s = self.stats
        return {"count": s.count, "first": s.first, "last": s.last, "samples": s.samples}

    async def do_open(self) -> int:
        return sum(not s.closed for s in self.subs)

    async def close(self) -> None:
        for transport in self.transports:
            transport.disconnect()
        self.subs.clear()
        self.transports.clear()
        await asyncio.sleep(0.1)
