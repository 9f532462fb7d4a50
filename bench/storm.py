"""A reconnect storm against one `gos-websocket server` process: `python -m bench.storm`.

N clients connect at once (bare sockets, one upgrade request each, no retry) to a server with
``workers: 1``; reported: how many got their 101, how many were closed or failed, and the time
until every client had its answer. Before ``server.limits.handshakes_in_progress`` the first
handshakes were dropped by the opening-handshake timeout while the rest were being accepted.

    python -m bench.storm --clients 8000                      this checkout
    python -m bench.storm --clients 8000 --budget 64          a budget of 64
    PYTHONPATH=/tmp/base python -m bench.storm --budget 0     another checkout (0: its default)
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import subprocess
import sys
import tempfile
import time

from bench.agent import raise_nofile
from bench.runner import free_port


def start(port: int, budget: int, event_loop: str) -> subprocess.Popen[bytes]:
    prefix = "GOS_WEB_SOCKET__"
    env = dict(os.environ)
    env |= {
        f"{prefix}SERVER__PORT": str(port),
        f"{prefix}SERVER__EVENT_LOOP": event_loop,
        f"{prefix}SERVER__HTTP__ENABLED": "false",
        f"{prefix}SERVER__METRICS__ENABLED": "false",
        f"{prefix}PUSHERS__ZMQ__ENABLED": "false",
        f"{prefix}LOGGING__LEVEL": "warning",
    }
    if budget:
        env[f"{prefix}SERVER__LIMITS__HANDSHAKES_IN_PROGRESS"] = str(budget)
    log = tempfile.NamedTemporaryFile(prefix="storm-server-", suffix=".log", delete=False)  # noqa: SIM115
    return subprocess.Popen(
        [sys.executable, "-m", "gos_web_socket.app", "server"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=raise_nofile,
    )


async def storm(port: int, clients: int, within: float) -> dict[str, object]:
    request = (
        f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: wamp\r\n\r\n"
    ).encode()
    outcomes: collections.Counter[str] = collections.Counter()
    waits: list[float] = []
    writers: list[asyncio.StreamWriter] = []

    async def one() -> None:
        t0 = time.monotonic()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writers.append(writer)
            writer.write(request)
            line = await asyncio.wait_for(reader.readline(), within)
        except (OSError, TimeoutError) as exc:
            outcomes[type(exc).__name__] += 1
            return
        if line.startswith(b"HTTP/1.1 101"):
            outcomes["opened"] += 1
            waits.append(time.monotonic() - t0)
        else:
            outcomes["closed before 101" if not line else line.decode().strip()] += 1

    t0 = time.monotonic()
    await asyncio.gather(*(one() for _ in range(clients)))
    seconds = time.monotonic() - t0
    for writer in writers:
        writer.close()
    waits.sort()
    return {
        "clients": clients,
        "outcomes": dict(outcomes),
        "seconds": round(seconds, 1),
        "p50_open_s": round(waits[len(waits) // 2], 2) if waits else None,
        "p99_open_s": round(waits[int(len(waits) * 0.99)], 2) if waits else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.storm", description=__doc__)
    parser.add_argument("--clients", type=int, default=8000)
    parser.add_argument("--budget", type=int, default=0, help="handshakes_in_progress (0: default)")
    parser.add_argument("--event-loop", default="auto", choices=["auto", "asyncio", "uvloop"])
    parser.add_argument("--within", type=float, default=120.0, help="seconds a client waits")
    args = parser.parse_args(argv)
    raise_nofile()
    port = free_port()
    server = start(port, args.budget, args.event_loop)
    try:
        time.sleep(4.0)  # imports and bind; a refused connection shows in the outcomes
        result = asyncio.run(storm(port, args.clients, args.within))
    finally:
        server.terminate()
        server.wait(30)
    print({"budget": args.budget or "default", "event_loop": args.event_loop, **result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
