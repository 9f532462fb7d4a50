"""100,000 idle subscribed connections on one machine (issue #18): `python -m bench.hundred_k`.

One process may open at most 20,000 files here, so the server runs as ``server.workers``
processes (each well below that) and the clients as several fleet processes, each on its own
``127.0.0.x`` source address (28,232 ephemeral ports per address). The run:

1. start ``gos-websocket server`` with N workers and ZeroMQ on; sum the workers' RSS (baseline);
2. every fleet connects its share at once (a mass reconnect, as after a load balancer reload;
   at most ``--in-flight`` handshakes per fleet, 0 for all at once, retried on failure) and
   subscribes;
3. wait until ``/metrics`` counts every subscription, hold for ``--hold`` seconds;
4. sum the workers' RSS again, push one event through ZeroMQ and time its arrival everywhere.

Reported: connect rate, push-to-everyone p50/p99/max, server RSS per connection
(sum of worker RSS minus the idle baseline, divided by connections), and what failed.

The client is a minimal WebSocket client on bare asyncio sockets (upgrade, one masked
SUBSCRIBE, unmasked frames in) so that 12,500 connections fit in one process cheaply.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from bench.agent import Agent, Child, call_all
from bench.wire import CHANNEL, ROUTE, data, stamp

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def masked(payload: bytes) -> bytes:
    """One client text frame (FIN, masked with a fixed key: the server XORs whatever it is)."""
    mask = b"\x5a\xa5\x3c\xc3"
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert len(payload) < 126
    return struct.pack("!BB", 0x81, 0x80 | len(payload)) + mask + body


SUBSCRIBE = masked(json.dumps([5, CHANNEL]).encode())


class RawSubscriber(asyncio.Protocol):
    """One WAMP v1 subscriber: upgrade, SUBSCRIBE, then count EVENT frames."""

    __slots__ = ("fleet", "opened", "buffer", "upgraded", "transport")

    def __init__(self, fleet: RawFleet, opened: asyncio.Future[None]) -> None:
        self.fleet = fleet
        self.opened = opened
        self.buffer = b""
        self.upgraded = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.fleet.request)

    def data_received(self, chunk: bytes) -> None:
        buffer = self.buffer + chunk if self.buffer else chunk
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = buffer
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                self._fail(ConnectionError(buffer[: buffer.find(b"\r\n")].decode()))
                return
            self.upgraded = True
            assert self.transport is not None
            self.transport.write(SUBSCRIBE)
            if not self.opened.done():
                self.opened.set_result(None)
            buffer = buffer[end + 4 :]
        self.buffer = self._frames(buffer)

    def _frames(self, buffer: bytes) -> bytes:
        """Read every whole frame of ``buffer``; the incomplete rest is returned."""
        while len(buffer) >= 2:
            size = buffer[1] & 0x7F
            start = 2
            if size == 126:
                if len(buffer) < 4:
                    break
                size, start = struct.unpack_from("!H", buffer, 2)[0], 4
            elif size == 127:
                if len(buffer) < 10:
                    break
                size, start = struct.unpack_from("!Q", buffer, 2)[0], 10
            if len(buffer) < start + size:
                break
            payload = buffer[start : start + size]
            buffer = buffer[start + size :]
            sent = stamp(payload) if payload.startswith(b"[8,") else -1
            if sent > 0:
                self.fleet.latencies.append(time.monotonic_ns() - sent)
        return buffer

    def _fail(self, exc: Exception) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.upgraded:
            self.fleet.lost += 1
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during the handshake"))


class RawFleet(Agent):
    """Thousands of ``RawSubscriber`` connections from one source address."""

    def __init__(self) -> None:
        self.connections: list[RawSubscriber] = []
        self.latencies: list[int] = []
        self.lost = 0
        self.request = b""

    async def _one(self, host: str, port: int, source: str, within: float) -> RawSubscriber:
        loop = asyncio.get_running_loop()
        opened: asyncio.Future[None] = loop.create_future()
        _, protocol = await asyncio.wait_for(
            loop.create_connection(
                lambda: RawSubscriber(self, opened), host, port, local_addr=(source, 0)
            ),
            within,
        )
        try:
            await asyncio.wait_for(opened, within)
        except BaseException:
            if protocol.transport is not None:
                protocol.transport.abort()
            raise
        return protocol

    async def do_connect(
        self,
        host: str,
        port: int,
        count: int,
        source: str,
        in_flight: int,
        attempts: int = 20,
        within: float = 30.0,
    ) -> dict[str, Any]:
        """Open ``count`` subscribed connections, at most ``in_flight`` handshakes at a time
        (0: all at once, a mass reconnect), each given ``within`` seconds to connect and as
        long to open, and retried (with a short backoff) up to ``attempts`` times."""
        key = base64.b64encode(os.urandom(16)).decode()
        self.request = (
            f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: wamp\r\n\r\n"
        ).encode()
        gate = asyncio.Semaphore(in_flight or count)
        errors: dict[str, int] = {}
        failed = 0

        async def connect() -> None:
            nonlocal failed
            for attempt in range(attempts):
                async with gate:
                    try:
                        self.connections.append(await self._one(host, port, source, within))
                        return
                    except (OSError, TimeoutError, ConnectionError) as exc:
                        name = f"{type(exc).__name__}: {str(exc)[:60]}".rstrip(": ")
                        errors[name] = errors.get(name, 0) + 1
                await asyncio.sleep(min(2.0, 0.05 * 2**attempt))
            failed += 1

        t0 = time.monotonic()
        await asyncio.gather(*(connect() for _ in range(count)))
        return {
            "connected": len(self.connections),
            "failed": failed,
            "retries": sum(errors.values()),
            "errors": errors,
            "seconds": time.monotonic() - t0,
        }

    async def do_open(self) -> int:
        """Connections still open."""
        return len(self.connections) - self.lost

    async def do_latencies(self) -> list[int]:
        return self.latencies

    async def do_take(self) -> list[int]:
        """The latencies so far, forgotten here (one push's at a time: bench/lone_push.py)."""
        taken, self.latencies = self.latencies, []
        return taken


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as reply:  # noqa: S310 (loopback http)
        return reply.read().decode()


def health(metrics_port: int) -> dict[str, Any]:
    try:
        body: dict[str, Any] = json.loads(_get(f"http://127.0.0.1:{metrics_port}/health"))
    except urllib.error.HTTPError as exc:
        body = json.loads(exc.read())
    return body


def metric(metrics_port: int, name: str) -> float:
    for line in _get(f"http://127.0.0.1:{metrics_port}/metrics").splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise KeyError(name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def worker_pids(metrics_port: int) -> list[int]:
    return [w["pid"] for w in health(metrics_port)["workers"].values() if w]


def rss(pids: list[int]) -> int:
    return sum(psutil.Process(pid).memory_info().rss for pid in pids)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes so far."""
    total = 0.0
    for pid in pids:
        times = psutil.Process(pid).cpu_times()
        total += times.user + times.system
    return total


def percentile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


def wait_ready(server: subprocess.Popen[bytes], metrics_port: int, within: float = 120) -> None:
    """Return once the server's ``/health`` says ready; raise if it exits or takes too long."""
    deadline = time.monotonic() + within
    while True:
        try:
            if health(metrics_port)["status"] == "ready":
                return
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the server did not become ready")
        time.sleep(0.2)


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def start_server(
    args: argparse.Namespace, port: int, metrics: int, zmq: int
) -> subprocess.Popen[bytes]:
    settings = {
        "SERVER__PORT": str(port),
        "SERVER__WORKERS": str(args.workers),
        "SERVER__EVENT_LOOP": args.event_loop,
        "SERVER__HTTP__ENABLED": "false",
        "SERVER__METRICS__PORT": str(metrics),
        "PUSHERS__ZMQ__PORT": str(zmq),
        "SERVER__LIMITS__HANDSHAKE_TIMEOUT": str(args.handshake_timeout),
    }
    if args.handshakes_in_progress:
        settings["SERVER__LIMITS__HANDSHAKES_IN_PROGRESS"] = str(args.handshakes_in_progress)
    return spawn_server(settings, "hundred_k")


def spawn_server(settings: dict[str, str], name: str) -> subprocess.Popen[bytes]:
    """``gos-websocket server`` with ``GOS_WEB_SOCKET__<key>`` overrides (``settings``), its
    output in a temp file named after the bench."""
    env = {**os.environ, **{f"GOS_WEB_SOCKET__{key}": value for key, value in settings.items()}}
    output = tempfile.NamedTemporaryFile(prefix=f"{name}-server-", suffix=".log", delete=False)
    log(f"server output: {output.name}")
    return subprocess.Popen(
        [sys.executable, "-m", "gos_web_socket.app", "server"],
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
        preexec_fn=raise_nofile,
    )


def raise_nofile() -> None:
    from bench.agent import raise_nofile as raise_limit

    raise_limit()


async def push_once(zmq_port: int) -> int:
    from bench.ours import make_pusher

    pusher = make_pusher("zmq", zmq_port=zmq_port)
    try:
        payload = data(1)
        await pusher.push(payload, ROUTE, {"room": "bench"})
        return int(payload["t"])  # type: ignore[call-overload]
    finally:
        await pusher.close()


def run(args: argparse.Namespace) -> dict[str, Any]:
    port, metrics, zmq = free_port(), free_port(), free_port()
    server = start_server(args, port, metrics, zmq)
    fleets: list[Child] = []
    result: dict[str, Any] = {
        "connections_target": args.connections,
        "workers": args.workers,
        "fleets": args.fleets,
        "in_flight_per_fleet": args.in_flight or "all",
        "client_timeout_s": args.client_timeout,
        "handshakes_in_progress": args.handshakes_in_progress or "default",
        "event_loop": args.event_loop,
        "hold_s": args.hold,
        "somaxconn": int(Path("/proc/sys/net/core/somaxconn").read_text()),
    }
    try:
        wait_ready(server, metrics)
        pids = worker_pids(metrics)
        time.sleep(2.0)
        base = rss(pids)
        log(f"{len(pids)} workers ready; baseline RSS {base / 2**20:.1f} MiB")
        result["rss_base_mib"] = round(base / 2**20, 1)

        fleets = [Child("hundred_k_fleet", max_life=3600) for _ in range(args.fleets)]
        shares = [
            args.connections // args.fleets + (i < args.connections % args.fleets)
            for i in range(args.fleets)
        ]
        sources = [f"127.0.0.{10 + i}" for i in range(args.fleets)]
        log(f"connecting {args.connections:,} from {args.fleets} fleets ({sources[0]}..)")
        t0 = time.monotonic()
        reports = call_all(
            fleets,
            "connect",
            [
                ("127.0.0.1", port, share, source, args.in_flight, 20, args.client_timeout)
                for share, source in zip(shares, sources, strict=True)
            ],
            timeout=1800,
        )
        connect_s = time.monotonic() - t0
        connected = sum(r["connected"] for r in reports)
        errors: dict[str, int] = {}
        for report in reports:
            for name, count in report["errors"].items():
                errors[name] = errors.get(name, 0) + count
        result |= {
            "connected": connected,
            "failed": sum(r["failed"] for r in reports),
            "retries": sum(r["retries"] for r in reports),
            "errors": errors,
            "connect_s": round(connect_s, 2),
            "connects_per_s": round(connected / connect_s, 1),
        }
        log(
            f"connected {connected:,} in {connect_s:.1f} s "
            f"({connected / connect_s:,.0f}/s); errors {errors}"
        )

        deadline = time.monotonic() + 120
        while (subs := metric(metrics, "gos_websocket_subscriptions")) < connected:
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
        result["subscriptions"] = subs
        log(f"{subs:,.0f} subscriptions; holding {args.hold} s")
        time.sleep(args.hold)
        still = sum(call_all(fleets, "open", [()] * len(fleets), timeout=60))
        pids = worker_pids(metrics)
        loaded = rss(pids)
        per_worker = [psutil.Process(pid).memory_info().rss for pid in pids]
        result |= {
            "open_after_hold": still,
            "server_connections": metric(metrics, "gos_websocket_connections"),
            "rss_mib": round(loaded / 2**20, 1),
            "rss_per_worker_mib": [round(r / 2**20, 1) for r in per_worker],
            "kib_per_connection": round((loaded - base) / max(still, 1) / 1024, 2),
        }
        log(
            f"open after hold {still:,}; RSS {loaded / 2**20:.1f} MiB; "
            f"{result['kib_per_connection']} KiB/conn"
        )

        fleet_pids = [fleet.pid for fleet in fleets]
        before = cpu_seconds(pids), cpu_seconds(fleet_pids)
        sent = asyncio.run(push_once(zmq))
        deadline = time.monotonic() + 60
        while True:
            latencies = [x for f in fleets for x in f.call("latencies", timeout=60)]
            if len(latencies) >= still or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        # Where the push's time goes: the server's workers or the clients on the same cores
        # (CPU over the push and the polling above, so an upper bound for both).
        result["push_cpu_s_workers"] = round(cpu_seconds(pids) - before[0], 2)
        result["push_cpu_s_fleets"] = round(cpu_seconds(fleet_pids) - before[1], 2)
        result |= {
            "push_received": len(latencies),
            "push_p50_ms": round(percentile(latencies, 0.50) / 1e6, 1) if latencies else None,
            "push_p99_ms": round(percentile(latencies, 0.99) / 1e6, 1) if latencies else None,
            "push_max_ms": round(max(latencies) / 1e6, 1) if latencies else None,
            "push_sent_ns": sent,
        }
        log(
            f"push reached {len(latencies):,}: p50 {result['push_p50_ms']} ms, "
            f"p99 {result['push_p99_ms']} ms, max {result['push_max_ms']} ms"
        )
        return result
    finally:
        for fleet in fleets:
            fleet.stop()
        server.send_signal(signal.SIGTERM)
        try:
            result["server_exit"] = server.wait(120)
        except subprocess.TimeoutExpired:
            server.kill()
            result["server_exit"] = "killed"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.hundred_k",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--connections", type=int, default=100_000)
    parser.add_argument(
        "--workers", type=int, default=8, help="server processes (each < 20,000 fds)"
    )
    parser.add_argument(
        "--fleets", type=int, default=8, help="client processes (each < 20,000 fds)"
    )
    parser.add_argument(
        "--in-flight", type=int, default=1000, help="handshakes at once per fleet (0: all)"
    )
    parser.add_argument(
        "--client-timeout", type=float, default=30.0, help="seconds to connect, then to open"
    )
    parser.add_argument(
        "--handshakes-in-progress",
        type=int,
        default=0,
        help="server.limits.handshakes_in_progress (0: the setting's default)",
    )
    parser.add_argument("--hold", type=float, default=60.0, help="seconds idle before the push")
    parser.add_argument("--event-loop", default="auto", choices=["auto", "asyncio", "uvloop"])
    parser.add_argument(
        "--handshake-timeout", type=float, default=5.0, help="server.limits.handshake_timeout"
    )
    parser.add_argument("--out", default=str(RESULTS / "hundred_k.json"))
    args = parser.parse_args(argv)
    result = run(args)
    result["command"] = "python -m bench.hundred_k " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
