"""A mass reconnect on a presence channel: `python -m bench.presence_storm`.

One `gos-websocket server` process (``presence: true`` on ``acme/channel/{room}``, window 1 s),
``--watchers`` clients watching ``gos/presence/acme/channel/bench`` from a child process (niced
as the fleets are), and
``--clients`` signed-in users spread over ``--fleets`` child processes (as bench.runner spreads
fleets: at most 4, each on its own 127.0.0.x source address, the open-file limit raised to the hard
one) of light clients (bare asyncio, bench.hundred_k's) that subscribe, all drop at once, and all
come back, retrying what the server's admission refuses or leaves waiting. Meanwhile one more client
of this process publishes ``--rate`` ordinary pushes a second to the channel and times each from
publish to its own copy, first for 10 s with nobody coming or going (the baseline), then over the
storm; this process's own lateness over the storm is reported beside (``harness_late``: the
pushes are timed here). ``--via publish`` (the default) sends them as that client's PUBLISH,
which reaches the members on its own worker only (docs/scaling.md); ``--via zmq`` pushes them
from this process with the ZeroMQ pusher, as a backend does, and every worker fans each out to
its members.

Reported: the join/leave frames each watcher received (against the 2 x clients frames a
frame-per-change design sends each watcher over the drop and the return), the watchers' total,
the server's CPU seconds over the drop and the return (and its share of one core, beside the
fleets' CPU seconds: which side is the bottleneck), the retries, and the pushes' p50/p99/max over
the same span, with each push's latency by when it was published (``push_series``: which phase of
the storm held it). ``--workers N`` runs the server with ``server.workers: N`` (CPU summed over
its processes).

    python -m bench.presence_storm --clients 2000 --watchers 20
    python -m bench.presence_storm --clients 10000 --watchers 20 --fleets 4
    python -m bench.presence_storm --clients 10000 --watchers 20 --fleets 4 --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import secrets
import sys
import tempfile
import time
from asyncio.subprocess import Process
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

import jwt
import psutil
import yaml

from bench.agent import raise_nofile
from bench.hundred_k import RawFleet, RawSubscriber, cpu_seconds
from bench.runner import fleets_for, free_port, percentile, split
from bench.wire import CHANNEL, ROOM as ROOM_NAME, ROUTE
from gos_web_socket.app.testing import WampTestClient

ROOM = CHANNEL
WATCH = "gos/presence/" + ROOM
CALM_S = 10.0
"""Seconds of pushes timed before the storm, in the same run: the baseline the machine allows."""
IN_FLIGHT = 500
"""Connection attempts under way per fleet; the server's handshake budget admits what it can
finish and leaves the rest in its accept queue, where ``WITHIN`` runs out and they retry."""
WITHIN = 30.0
"""Seconds an attempt gets to connect, and as long again for its opening handshake."""
ATTEMPTS = 30
"""Attempts per user before it counts as failed (backoff 0.05 s doubling, at most 2 s, jittered)."""
ROUTES = {ROUTE: {"pattern": "acme/channel/{room}", "callback": "acme.topic", "presence": True}}


def token(secret: str, user: str) -> str:
    return jwt.encode({"sub": user, "exp": int(time.time()) + 3600}, secret, "HS256")


def processes(pid: int) -> list[int]:
    """The server's process and, with ``server.workers``, its workers."""
    return [pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))]


def waiting_seconds(pid: int) -> float:
    """Seconds the server's processes were runnable but waited for a core (their run-queue
    delay): beside their CPU seconds, what a loaded machine withheld from them."""
    return sum(
        int(Path(f"/proc/{one}/schedstat").read_text().split()[1]) / 1e9 for one in processes(pid)
    )


class Member(RawSubscriber):
    """One signed-in WAMP v1 member on bare asyncio, bench.hundred_k's client with its own
    upgrade (its token in the URL), subscribed to the room, its pushes dropped unread: a full
    autobahn client per connection (WampTestClient) does not fit 2,500 in one process."""

    __slots__ = ("upgrade",)

    def __init__(self, fleet: Fleet, opened: asyncio.Future[None], upgrade: bytes) -> None:
        super().__init__(fleet, opened)
        self.upgrade = upgrade

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.upgrade)

    def _frames(self, buffer: bytes) -> bytes:
        return b""  # the room's pushes (keepalive pings are off by default)


def upgrade(host: str, port: int, token: str) -> bytes:
    """The opening handshake of a signed-in WAMP v1 client."""
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET /?token={token} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: wamp\r\n\r\n"
    ).encode()


class Fleet(RawFleet):
    """Users ``first`` to ``first + count - 1`` from one source address, each connected with the
    admission the server gives: refused, reset or timed-out attempts retried with backoff."""

    def __init__(self, port: int, secret: str, source: str, users: range) -> None:
        super().__init__()
        self.port = port
        self.source = source
        self.requests = [upgrade("127.0.0.1", port, token(secret, f"u{u}")) for u in users]
        self.retries = 0
        self.failed = 0
        self._gate = asyncio.Semaphore(IN_FLIGHT)

    async def attempt(self, request: bytes) -> Member:
        loop = asyncio.get_running_loop()
        opened: asyncio.Future[None] = loop.create_future()
        _, member = await asyncio.wait_for(
            loop.create_connection(
                lambda: Member(self, opened, request),
                "127.0.0.1",
                self.port,
                local_addr=(self.source, 0),
            ),
            WITHIN,
        )
        try:
            await asyncio.wait_for(opened, WITHIN)
        except BaseException:
            if member.transport is not None:
                member.transport.abort()
            raise
        return member

    async def one(self, request: bytes) -> None:
        for tries in range(ATTEMPTS):
            async with self._gate:
                try:
                    self.connections.append(await self.attempt(request))
                    return
                except (OSError, TimeoutError, ConnectionError):
                    self.retries += 1
            await asyncio.sleep(min(2.0, 0.05 * 2**tries) * (0.5 + random.random()))
        self.failed += 1

    async def connect(self) -> None:
        """Everyone connects at once (a mass reconnect), ``IN_FLIGHT`` attempts under way."""
        self.connections = []
        await asyncio.gather(*(self.one(r) for r in self.requests))

    def drop(self) -> None:
        """Every connection closed at once, without a closing handshake."""
        for member in self.connections:
            if member.transport is not None:
                member.transport.abort()


async def fleet(url: str, secret: str, first: int, count: int, source: str) -> None:
    """A child: its users subscribe; on ``drop`` all close at once, on ``back`` all return; each
    answer carries the connections, retries and failures so far."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    crowd = Fleet(
        int(url.rsplit(":", 1)[1].strip("/")), secret, source, range(first, first + count)
    )

    def say(word: str) -> None:
        counts = f"{len(crowd.connections)} {crowd.retries} {crowd.failed}"
        print(word, counts, flush=True)

    await crowd.connect()
    say("ready")
    await reader.readline()  # drop
    crowd.drop()
    say("dropped")
    await reader.readline()  # back
    await crowd.connect()
    say("back")
    await reader.readline()
    crowd.drop()


async def watch(url: str, count: int) -> None:
    """A child: ``count`` watchers of the room's presence, in a process of their own (a big
    diff parsed twenty times held the loop that times the pushes up to 200 ms). On each
    ``count`` line it prints the frames each watcher received so far; on ``end`` it leaves."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    eyes = [await WampTestClient.connect(url) for _ in range(count)]
    for eye in eyes:
        eye.subscribe(WATCH)
        await eye.next_event(WATCH)  # the state
    print("ready", flush=True)
    while (await reader.readline()).strip() == b"count":
        print(json.dumps([len(eye.unread_events()) for eye in eyes]), flush=True)
    for eye in eyes:
        await eye.close()


async def frames_seen(watchers: Process) -> list[int]:
    """The presence frames each watcher received so far."""
    assert watchers.stdin is not None and watchers.stdout is not None
    watchers.stdin.write(b"count\n")
    counts: list[int] = json.loads(await watchers.stdout.readline())
    return counts


def spans(clients: int, fleets: int) -> list[tuple[int, int]]:
    """(first user, how many) of each fleet."""
    counts = split(clients, fleets)
    return [(sum(counts[:i]), count) for i, count in enumerate(counts)]


async def each_says(children: list[Process], word: bytes) -> dict[str, int]:
    """Wait for every fleet's ``word``; their connections, retries and failures, summed."""
    total = {"connected": 0, "retries": 0, "failed": 0}
    for child in children:
        assert child.stdout is not None
        said, *counts = (await child.stdout.readline()).split()
        assert said == word, said
        for key, count in zip(total, counts, strict=True):
            total[key] += int(count)
    return total


async def tell(children: list[Process], command: bytes, answer: bytes | None) -> dict[str, int]:
    """Send ``command`` to every fleet at once, then wait for each one's ``answer``."""
    for child in children:
        assert child.stdin is not None
        child.stdin.write(command)
    return {} if answer is None else await each_says(children, answer)


Send = Callable[[dict[str, float]], Awaitable[object]]
"""One ordinary push of this payload to the room (a PUBLISH or a backend's push)."""


class Pushes:
    """Ordinary pushes to the room at ``rate`` a second (``send``); each is timed from its
    publish to the copy the server fans out to ``client``, a member."""

    def __init__(self, client: WampTestClient, rate: float, send: Send) -> None:
        self.client = client
        self.rate = rate
        self.send = send
        self.sent = 0
        self.latencies: list[float] = []
        self.sent_at: list[float] = []
        """When each received push was published (perf_counter): where in the storm it fell."""
        self._tasks: list[asyncio.Task[None]] = []
        self._caught_up = asyncio.Event()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._send()), loop.create_task(self._receive())]

    async def _send(self) -> None:
        while True:
            await self.send({"t": time.perf_counter()})
            self.sent += 1
            await asyncio.sleep(1 / self.rate)

    async def _receive(self) -> None:
        while True:
            event = await self.client.next_event(ROOM, timeout=3600)
            self.latencies.append(time.perf_counter() - event["t"])
            self.sent_at.append(event["t"])
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


async def sender(
    via: str, member: WampTestClient, zmq_port: int, stack: contextlib.AsyncExitStack
) -> Send:
    """How the ordinary pushes are sent: ``member``'s PUBLISH, or the ZeroMQ pusher's push."""
    if via == "publish":

        async def publish(payload: dict[str, float]) -> None:
            member.publish(ROOM, payload)

        return publish
    from bench.ours import make_pusher

    pusher = make_pusher("zmq", zmq_port=zmq_port)
    stack.push_async_callback(pusher.close)
    await asyncio.sleep(0.5)  # the ZeroMQ connection is up before the first push
    return partial(pusher.push, route_name=ROUTE, route_parameters={"room": ROOM_NAME})


class Lateness:
    """How late this process's own loop ran over the storm (a 5 ms tick): the pushes are timed
    here, so a harness busy with the watchers' frames would add its lateness to theirs."""

    TICK = 0.005

    def __init__(self) -> None:
        self.late: list[tuple[float, float]] = []
        """(when, s since ``start``; how late, s) of every tick over 20 ms late."""
        self._task: asyncio.Task[None] | None = None

    def start(self, since: float) -> None:
        self._task = asyncio.get_running_loop().create_task(self._tick(since))

    async def _tick(self, since: float) -> None:
        while True:
            due = time.perf_counter() + self.TICK
            await asyncio.sleep(self.TICK)
            now = time.perf_counter()
            if now - due > 0.02:
                self.late.append((round(due - since, 2), round(now - due, 3)))

    def stop(self) -> dict[str, object]:
        if self._task is not None:
            self._task.cancel()
        worst = max((late for _, late in self.late), default=0.0)
        return {"harness_late_ms_max": round(1000 * worst, 1), "harness_late": self.late}


def lowered(nice: int) -> Callable[[], None]:
    """A fleet's preexec: the open-file limit raised, its priority lowered by ``nice``.

    Where the kernel groups processes by session for scheduling (``sched_autogroup_enabled``,
    on here), a nice value only ranks processes within their group, and each group gets its
    share of the CPU: the server's workers each have a session of their own, so a niced fleet
    left in this one would still take a group's share. A niced fleet gets its own session and
    lowers that group's priority too."""

    def prepare() -> None:
        raise_nofile()
        os.nice(nice)
        if nice:
            os.setsid()
            with contextlib.suppress(OSError):
                Path("/proc/self/autogroup").write_text(str(nice))

    return prepare


async def run(
    clients: int,
    watchers: int,
    fleets: int,
    rate: float,
    workers: int,
    nice: int = 0,
    lag: float | None = None,
    via: str = "publish",
) -> dict[str, object]:
    secret = secrets.token_hex(32)  # never "-...": the fleets take it as an argument
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
    zmq_port = free_port()  # not 5555: tests may hold it
    env |= {"GOS_WEB_SOCKET__PUSHERS__ZMQ__ENABLED": "true" if via == "zmq" else "false"}
    env |= {"GOS_WEB_SOCKET__PUSHERS__ZMQ__PORT": str(zmq_port)}
    if workers:
        env |= {"GOS_WEB_SOCKET__SERVER__WORKERS": str(workers)}
    if lag is not None:
        env |= {"GOS_WEB_SOCKET__SERVER__LIMITS__HANDSHAKE_LAG": str(lag)}
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gos_web_socket.app", "server",
        "--config", str(folder / "config.yaml"), env=env, stdin=asyncio.subprocess.DEVNULL,
        preexec_fn=raise_nofile,
    )  # fmt: skip
    url = f"ws://127.0.0.1:{port}/"
    stack = contextlib.AsyncExitStack()
    try:
        for _ in range(200):
            try:
                probe = await WampTestClient.connect(url)
                await probe.close()
                break
            except OSError:
                await asyncio.sleep(0.1)
        eyes = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.presence_storm", "--watch", url, str(watchers),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            preexec_fn=lowered(nice),
        )  # fmt: skip
        assert eyes.stdout is not None and eyes.stdin is not None
        assert await eyes.stdout.readline() == b"ready\n"
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
                f"127.0.0.{2 + i}",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                preexec_fn=lowered(nice),
            )  # fmt: skip
            for i, (first, count) in enumerate(spans(clients, fleets))
        ]
        ready = await each_says(children, b"ready")
        await asyncio.sleep(2.5)  # the joins' diffs out
        before = await frames_seen(eyes)  # the joins: not part of the storm
        pusher = await WampTestClient.connect(url)
        pusher.subscribe(ROOM)
        send = await sender(via, pusher, zmq_port, stack)
        calm = Pushes(pusher, rate, send)  # the same with nobody coming or going: the baseline
        await calm.start()
        await asyncio.sleep(CALM_S)
        baseline = await calm.stop()
        timed = Pushes(pusher, rate, send)
        cpu = cpu_seconds(processes(server.pid))
        waited = waiting_seconds(server.pid)
        harness = cpu_seconds([child.pid for child in children])
        started = time.perf_counter()
        lateness = Lateness()
        lateness.start(started)
        await timed.start()
        await tell(children, b"drop\n", b"dropped")
        dropped = time.perf_counter() - started
        back = await tell(children, b"back\n", b"back")
        storm = time.perf_counter() - started
        await asyncio.sleep(2.5)  # the last window out
        latencies = await timed.stop()
        harness_late = lateness.stop()
        cpu = cpu_seconds(processes(server.pid)) - cpu
        waited = waiting_seconds(server.pid) - waited
        spent = time.perf_counter() - started
        harness = cpu_seconds([child.pid for child in children]) - harness
        frames = [after - b for after, b in zip(await frames_seen(eyes), before, strict=True)]
        await tell(children, b"end\n", None)
        await asyncio.gather(*(child.wait() for child in children))
        eyes.stdin.write(b"end\n")
        await eyes.wait()
        await pusher.close()
        return {
            "clients": clients,
            "server_workers": workers or None,
            "fleets": fleets,
            "fleets_nice": nice,
            "handshake_lag_s": lag,
            "watchers": watchers,
            "storm_s": round(storm, 2),
            "all_dropped_at_s": round(dropped, 2),
            "push_series": [  # (published at, s since the drop; latency, ms)
                (round(at - started, 2), round(1000 * took, 1))
                for at, took in zip(timed.sent_at, timed.latencies, strict=True)
            ],
            "frames_per_watcher_max": max(frames),
            "frames_all_watchers": sum(frames),
            "join_frames_per_watcher": max(before),
            "frames_per_change_design": 2 * clients * watchers,
            "server_cpu_s": round(cpu, 2),
            "server_cpu_share": round(cpu / spent, 2),
            "server_runqueue_wait_s": round(waited, 2),
            "fleets_cpu_s": round(harness, 2),
            "first_connect": ready,
            "reconnect": back,
            "pushes_per_s": rate,
            "pushes_via": via,
            **latencies,
            **harness_late,
            "calm_s": CALM_S,
            **{f"calm_{key}": value for key, value in baseline.items()},
            "load_average_1m": round(os.getloadavg()[0], 2),
        }
    finally:
        await stack.aclose()
        server.terminate()
        await server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--watchers", type=int, default=20)
    parser.add_argument("--fleets", type=int, help="client processes (default: as bench.runner)")
    parser.add_argument("--rate", type=float, default=5.0, help="ordinary pushes a second")
    parser.add_argument(
        "--workers", type=int, default=0, help="server.workers (default: one process, no workers)"
    )
    parser.add_argument(
        "--fleet-nice",
        type=int,
        default=0,
        help="run the client fleets at this lower priority (os.nice), so that on a small shared"
        " machine the server's CPU is what a server with its own cores would have",
    )
    parser.add_argument(
        "--handshake-lag",
        type=float,
        help="server.limits.handshake_lag: the loop lag (s) that cuts the handshakes admitted",
    )
    parser.add_argument(
        "--via",
        choices=["publish", "zmq"],
        default="publish",
        help="the ordinary pushes: a member's PUBLISH (its own worker's members) or the ZeroMQ"
        " pusher's push (every worker's)",
    )
    parser.add_argument("--watch", nargs=2, metavar=("URL", "COUNT"))
    parser.add_argument("--fleet", nargs=5, metavar=("URL", "SECRET", "FIRST", "COUNT", "SOURCE"))
    args = parser.parse_args()
    if args.watch:
        asyncio.run(watch(args.watch[0], int(args.watch[1])))
        return
    if args.fleet:
        url, secret, first, count, source = args.fleet
        asyncio.run(fleet(url, secret, int(first), int(count), source))
        return
    fleets = args.fleets or fleets_for(args.clients)
    storm = run(
        args.clients,
        args.watchers,
        fleets,
        args.rate,
        args.workers,
        args.fleet_nice,
        args.handshake_lag,
        args.via,
    )
    result = asyncio.run(storm)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
