"""SSE beside WebSocket on one channel: server CPU per delivery and memory per connection
(issue #28): `python -m bench.sse --subscribers 1000 --pushes 100`.

One server process (``gos-websocket server``, the hub on, pushes through its JSON publish API)
and, in this process, ``--subscribers`` raw WAMP v1 WebSocket subscribers of one channel and as
many raw SSE subscribers of another. The WebSocket phase then the SSE phase, in the same run:
connect the fleet (server RSS before and after: memory per connection), push ``--pushes``
updates to its channel one after the other, wait until every subscriber counted every one
(server CPU seconds during the phase / deliveries: CPU per delivery). The first fleet is
closed before the second connects, so the second phase's RSS growth reuses what the first freed:
compare memory with ``--sse-first`` too. Reported side by side, with the SSE / WebSocket ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import time
from collections.abc import Callable
from typing import Any

import psutil

from bench.agent import raise_nofile
from bench.hundred_k import free_port, log, masked, spawn_server
from bench.wire import PAD

KEY = "bench-" + "k" * 32
WS_CHANNEL = "acme/channel/ws"
SSE_CHANNEL = "acme/channel/sse"
SUBSCRIBE_WS = masked(json.dumps([5, WS_CHANNEL]).encode())


class Counter(asyncio.Protocol):
    """One raw subscriber: sends its request, counts the updates it receives."""

    def __init__(self, request: bytes, count: Callable[[Counter, bytes], bytes]) -> None:
        self.request, self.count, self.buffer, self.received = request, count, b"", 0
        self.head = False
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, chunk: bytes) -> None:
        buffer = self.buffer + chunk
        if not self.head:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = buffer
                return
            self.head, buffer = True, buffer[end + 4 :]
            if self.request.startswith(b"GET / "):
                self.transport.write(SUBSCRIBE_WS)  # a WebSocket: subscribe now
        self.buffer = self.count(self, buffer)
        if not self.ready.done() and self.head:
            self.ready.set_result(None)


def count_frames(counter: Counter, buffer: bytes) -> bytes:
    """Whole WebSocket frames (payloads < 64 KiB) that are EVENTs; the rest is kept."""
    while len(buffer) >= 2:
        size, start = buffer[1] & 0x7F, 2
        if size == 126:
            if len(buffer) < 4:
                break
            size, start = int.from_bytes(buffer[2:4], "big"), 4
        if len(buffer) < start + size:
            break
        counter.received += buffer[start : start + 3] == b"[8,"
        buffer = buffer[start + size :]
    return buffer


def count_events(counter: Counter, buffer: bytes) -> bytes:
    """Whole SSE events (blocks with a data line); comments and the rest are kept apart."""
    *blocks, rest = buffer.split(b"\n\n")
    counter.received += sum(b"data:" in block for block in blocks)
    return rest


def start_server(port: int) -> subprocess.Popen[bytes]:
    settings = {
        "SERVER__PORT": str(port),
        "SERVER__HTTP__ENABLED": "false",
        "SERVER__METRICS__ENABLED": "false",
        "PUSHERS__ZMQ__ENABLED": "false",
        "MERCURE__API_KEYS": json.dumps([KEY]),
        "MERCURE__HEARTBEAT": "0",
    }
    return spawn_server(settings, "sse-bench")


async def push(port: int, channel: str, seq: int) -> None:
    from gos_web_socket.app import http_client

    body = json.dumps({"channel": channel, "data": {"seq": seq, "pad": PAD}}).encode()
    headers = {"X-API-Key": KEY, "Content-Type": "application/json"}
    status, answer = await http_client.request(
        "POST", "127.0.0.1", port, "/api/publish", 30.0, body, headers
    )
    assert status == 200, answer


async def phase(
    kind: str, server: psutil.Process, port: int, args: argparse.Namespace
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    if kind == "ws":
        request = (
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Protocol: wamp\r\n\r\n"
        )
        count, channel = count_frames, WS_CHANNEL
    else:
        request = (
            f"GET /.well-known/mercure?topic={SSE_CHANNEL} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        ).encode()
        count, channel = count_events, SSE_CHANNEL
    rss_before = server.memory_info().rss
    fleet: list[Counter] = []
    for start in range(0, args.subscribers, 200):  # at most 200 handshakes at once
        batch = []
        for _ in range(start, min(args.subscribers, start + 200)):
            _transport, counter = await loop.create_connection(
                lambda: Counter(request, count), "127.0.0.1", port
            )
            batch.append(counter)
        await asyncio.gather(*(c.ready for c in batch))
        fleet += batch
    while any(c.received == 0 for c in fleet):  # warm-up until every subscription works
        await push(port, channel, -1)
        await asyncio.sleep(0.2)
    await asyncio.sleep(0.5)
    for counter in fleet:
        counter.received = 0
    await asyncio.sleep(1.0)  # the server's allocations settle
    rss_after = server.memory_info().rss
    cpu = server.cpu_times()
    started = time.perf_counter()
    for seq in range(args.pushes):
        await push(port, channel, seq)
    await wait_all(fleet, args.pushes)
    elapsed = time.perf_counter() - started
    after = server.cpu_times()
    cpu_s = (after.user + after.system) - (cpu.user + cpu.system)
    deliveries = args.pushes * args.subscribers
    for counter in fleet:
        counter.transport.abort()
    return {
        "kind": kind,
        "subscribers": args.subscribers,
        "pushes": args.pushes,
        "server_cpu_s": round(cpu_s, 3),
        "cpu_us_per_delivery": round(cpu_s / deliveries * 1e6, 3),
        "rss_kib_per_connection": round((rss_after - rss_before) / args.subscribers / 1024, 2),
        "seconds": round(elapsed, 2),
    }


async def wait_all(fleet: list[Counter], count: int, within: float = 120.0) -> None:
    deadline = time.monotonic() + within
    while any(c.received < count for c in fleet):
        if time.monotonic() > deadline:
            short = sum(c.received < count for c in fleet)
            raise RuntimeError(f"{short} subscribers short of {count} updates")
        await asyncio.sleep(0.02)


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    port = free_port()
    process = start_server(port)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
        server = psutil.Process(process.pid)
        order = ("sse", "ws") if args.sse_first else ("ws", "sse")
        rows = [await phase(kind, server, port, args) for kind in order]
        return sorted(rows, key=lambda row: row["kind"] != "ws")
    finally:
        process.terminate()
        process.wait(30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--pushes", type=int, default=100)
    parser.add_argument(
        "--sse-first",
        action="store_true",
        help="the SSE phase first (the second phase reuses memory the first one freed)",
    )
    args = parser.parse_args(argv)
    raise_nofile()
    rows = asyncio.run(run(args))
    for row in rows:
        log(json.dumps(row))
    ws, sse = rows
    ratio_cpu = sse["cpu_us_per_delivery"] / ws["cpu_us_per_delivery"]
    log(f"SSE / WebSocket: CPU per delivery x{ratio_cpu:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
