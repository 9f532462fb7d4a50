"""A mass reconnect on a presence channel: `python -m bench.presence_storm`.

One `gos-websocket server` process (``presence: true`` on ``acme/chat/{room}``, window 1 s),
``--watchers`` clients watching ``gos/presence/acme/chat/7`` from this process, and ``--clients``
signed-in users spread over ``--fleets`` child processes (as bench.runner spreads fleets: at most
4; the open-file limit is raised to the hard one in each) that subscribe, all drop at once, and
all come back. Meanwhile one more client of this process publishes ``--rate`` ordinary pushes a
second to the channel (which the server fans out to every member) and times each from publish to
its own copy, first for 10 s with nobody coming or going (the baseline), then over the storm.
Reported: the join/leave frames each watcher received (against the 2 x clients
frames a frame-per-change design sends each watcher over the drop and the return), the watchers'
total, the server's CPU seconds over the drop and the return, and the pushes' p50/p99/max over
the same span.

    python -m bench.presence_storm --clients 2000 --watchers 20
    python -m bench.presence_storm --clients 10000 --watchers 20 --fleets 4
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import sys
import tempfile
import time
from asyncio.subprocess import Process
from pathlib import Path

import jwt
import yaml

from bench.agent import raise_nofile
from bench.runner import fleets_for, free_port, percentile, split
from gos_web_socket.app.testing import WampTestClient

ROOM = "acme/chat/7"
WATCH = "gos/presence/" + ROOM
CALM_S = 10.0
"""Seconds of pushes timed before the storm, in the same run: the baseline the machine allows."""
HANDSHAKES = 25
"""Handshakes in flight per fleet: 4 fleets keep 100 under way, as one fleet of 2,000 did (more,
on a loaded machine, outlast the server's 5 s handshake_timeout)."""
ROUTES = {"chat": {"pattern": "acme/chat/{room}", "callback": "acme.topic", "presence": True}}


def token(secret: str, user: str) -> str:
    return jwt.encode({"sub": user, "exp": int(time.time()) + 3600}, secret, "HS256")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def fleet(url: str, secret: str, first: int, count: int) -> None:
    """A child: users ``first`` to ``first + count - 1`` subscribe; on ``drop`` all close, on
    ``back`` all return."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    gate = asyncio.Semaphore(HANDSHAKES)

    async def one(user: int) -> WampTestClient:
        async with gate:
            client = await WampTestClient.connect(
                f"{url}?token={token(secret, f'u{user}')}", timeout=60
            )
            client.subscribe(ROOM)
            return client

    users = range(first, first + count)
    clients = await asyncio.gather(*(one(u) for u in users))
    print("ready", flush=True)
    await reader.readline()  # drop
    for client in clients:
        client.abort()
    print("dropped", flush=True)
    await reader.readline()  # back
    clients = await asyncio.gather(*(one(u) for u in users))
    print("back", flush=True)
    await reader.readline()
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


def spans(clients: int, fleets: int) -> list[tuple[int, int]]:
    """(first user, how many) of each fleet."""
    counts = split(clients, fleets)
    return [(sum(counts[:i]), count) for i, count in enumerate(counts)]


async def each_says(children: list[Process], word: bytes) -> None:
    for child in children:
        assert child.stdout is not None
        assert (await child.stdout.readline()).strip() == word


async def tell(children: list[Process], command: bytes, answer: bytes | None) -> None:
    """Send ``command`` to every fleet at once, then wait for each one's ``answer``."""
    for child in children:
        assert child.stdin is not None
        child.stdin.write(command)
    if answer is not None:
        await each_says(children, answer)


class Pushes:
    """Ordinary pushes to the room at ``rate`` a second from a member of it; each is timed from
    its publish to the copy the server fans out back to that member."""

    def __init__(self, client: WampTestClient, rate: float) -> None:
        self.client = client
        self.rate = rate
        self.sent = 0
        self.latencies: list[float] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._caught_up = asyncio.Event()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._send()), loop.create_task(self._receive())]

    async def _send(self) -> None:
        while True:
            self.client.publish(ROOM, {"t": time.perf_counter()})
            self.sent += 1
            await asyncio.sleep(1 / self.rate)

    async def _receive(self) -> None:
        while True:
            event = await self.client.next_event(ROOM, timeout=3600)
            self.latencies.append(time.perf_counter() - event["t"])
            if self._tasks[0].done() and len(self.latencies) >= self.sent:
                self._caught_up.set()

    async def stop(self) -> dict[str, object]:
        """Stop sending, wait up to 5 s for the last copies, and summarise in milliseconds."""
        self._tasks[0].cancel()
        if len(self.latencies) < self.sent:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._caught_up.wait(), 5)
        self._tasks[1].cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        us = [int(1_000_000 * x) for x in self.latencies]
        ms = {q: round(percentile(us, q) / 1000, 1) if us else None for q in (0.5, 0.99, 1.0)}
        return {
            "pushes_sent": self.sent,
            "pushes_received": len(us),
            "push_p50_ms": ms[0.5],
            "push_p99_ms": ms[0.99],
            "push_max_ms": ms[1.0],
        }


async def run(clients: int, watchers: int, fleets: int, rate: float) -> dict[str, object]:
    secret = secrets.token_urlsafe(32)
    folder = Path(tempfile.mkdtemp(prefix="presence-storm-"))
    (folder / "routing.yaml").write_text(yaml.safe_dump(ROUTES))
    tree = {
        "server": {"router": {"resources": [str(folder / "routing.yaml")]}},
        "authentication": {
            "allow_anonymous": True,
            "providers": {"jwt": {"enabled": True, "algorithms": ["HS256"], "secret": secret}},
        },
    }
    (folder / "config.yaml").write_text(yaml.safe_dump({"gos_web_socket": tree}))
    port = free_port()
    env = {**os.environ, "GOS_WEB_SOCKET__SERVER__PORT": str(port)}
    env |= {"GOS_WEB_SOCKET__SERVER__HTTP__ENABLED": "false"}
    env |= {"GOS_WEB_SOCKET__SERVER__METRICS__ENABLED": "false"}
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gos_web_socket.app", "server",
        "--config", str(folder / "config.yaml"), env=env, stdin=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    url = f"ws://127.0.0.1:{port}/"
    try:
        for _ in range(200):
            try:
                probe = await WampTestClient.connect(url)
                await probe.close()
                break
            except OSError:
                await asyncio.sleep(0.1)
        eyes = [await WampTestClient.connect(url) for _ in range(watchers)]
        for eye in eyes:
            eye.subscribe(WATCH)
            await eye.next_event(WATCH)  # the state
        children = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.presence_storm",
                "--fleet",
                url,
                secret,
                str(first),
                str(count),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                preexec_fn=raise_nofile,
            )  # fmt: skip
            for first, count in spans(clients, fleets)
        ]
        await each_says(children, b"ready")
        await asyncio.sleep(2.5)  # the joins' diffs out
        before = [len(e.unread_events()) for e in eyes]  # the joins: not part of the storm
        pusher = await WampTestClient.connect(url)
        pusher.subscribe(ROOM)
        calm = Pushes(pusher, rate)  # the same pushes with nobody coming or going: the baseline
        await calm.start()
        await asyncio.sleep(CALM_S)
        baseline = await calm.stop()
        timed = Pushes(pusher, rate)
        cpu = cpu_seconds(server.pid)
        started = time.perf_counter()
        await timed.start()
        await tell(children, b"drop\n", b"dropped")
        await tell(children, b"back\n", b"back")
        storm = time.perf_counter() - started
        await asyncio.sleep(2.5)  # the last window out
        latencies = await timed.stop()
        cpu = cpu_seconds(server.pid) - cpu
        frames = [len(e.unread_events()) - b for e, b in zip(eyes, before, strict=True)]
        await tell(children, b"end\n", None)
        await asyncio.gather(*(child.wait() for child in children))
        for eye in (*eyes, pusher):
            await eye.close()
        return {
            "clients": clients,
            "fleets": fleets,
            "watchers": watchers,
            "storm_s": round(storm, 2),
            "frames_per_watcher_max": max(frames),
            "frames_all_watchers": sum(frames),
            "frames_per_change_design": 2 * clients * watchers,
            "server_cpu_s": round(cpu, 2),
            "pushes_per_s": rate,
            **latencies,
            "calm_s": CALM_S,
            **{f"calm_{key}": value for key, value in baseline.items()},
            "load_average_1m": round(os.getloadavg()[0], 2),
        }
    finally:
        server.terminate()
        await server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--watchers", type=int, default=20)
    parser.add_argument("--fleets", type=int, help="client processes (default: as bench.runner)")
    parser.add_argument("--rate", type=float, default=5.0, help="ordinary pushes a second")
    parser.add_argument("--fleet", nargs=4, metavar=("URL", "SECRET", "FIRST", "COUNT"))
    args = parser.parse_args()
    if args.fleet:
        url, secret, first, count = args.fleet
        asyncio.run(fleet(url, secret, int(first), int(count)))
        return
    fleets = args.fleets or fleets_for(args.clients)
    result = asyncio.run(run(args.clients, args.watchers, fleets, args.rate))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
