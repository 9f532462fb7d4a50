"""The full chaos run of issue #29 on a three-node RabbitMQ cluster, with real server processes.

Two `gos-websocket server` processes (``server.workers: 2`` each) consume the cluster in
``stream`` mode (or ``per_node`` with quorum queues); four subscribers per server read one
history channel over WAMP v2; four pushers (two async ``push()``, two ``push_sync()`` with
``confirm_mode: background``) send the pushes at a steady rate. Once a fifth of them arrived,
the node holding the stream's (or the first node queue's) leader is SIGKILLed and started
10 s later; then every node in turn is stopped (its Erlang VM, ``rabbitmqctl shutdown``) and
started again. Afterwards each subscriber's pushes are counted by history position: a position
seen twice is a repeat the client drops; a confirmed push a subscriber never saw is missing.

Run: ``.venv/bin/python -m tests.cluster.chaos --pushes 20000 --mode stream`` (and
``--mode per_node``); ``tests/cluster/test_chaos.py`` runs a small one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import yaml

from gos_web_socket.app.exceptions import PushFailed
from gos_web_socket.app.router import Router, load_routes_from_mapping
from gos_web_socket.app.transports.amqp.pusher import AmqpPusher
from gos_web_socket.settings.models import AmqpSettings
from tests.streams.nodes import healthy
from tests.streams.recovery import ROUTES, RecoveringPeer
from tests.support.cluster import RabbitMQCluster
from tests.support.process import ServerProcess, server_env
from tests.support.waiting import eventually

CHANNEL = "acme/channel/1"
SERVERS = 2
PUSHERS = 4
WORKER_EXIT = re.compile(r"worker \d+ \(pid \d+\) exited with")


@dataclass
class Subscriber:
    """One v2 client on a server node and what it read (positions with their push numbers)."""

    peer: RecoveringPeer
    task: asyncio.Task[Any] | None = None

    def seen(self) -> tuple[set[int], int, int]:
        """``(pushes seen, repeats dropped by position, pushes seen at two positions)``."""
        state = self.peer.state
        assert state is not None
        by_position: dict[tuple[Any, ...], int] = {}
        repeats = 0
        for payload, position in zip(state.payloads, state.positions, strict=True):
            key = (position.get("epoch"), position.get("offset"))
            if key in by_position:
                repeats += 1
                continue
            by_position[key] = payload["n"]
        numbers = list(by_position.values())
        return set(numbers), repeats, len(numbers) - len(set(numbers))


@dataclass
class Tally:
    """What the pushers were told, and the run's outcome."""

    pushed: int = 0
    confirmed: set[int] = field(default_factory=set)
    failed: set[int] = field(default_factory=set)
    faults: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    missing: int = 0
    twice: int = 0
    worker_restarts: int = 0
    servers_alive: bool = True
    pushing_at_faults: tuple[bool, bool] = (False, False)
    """Whether the pushers were still sending when the faults began and when they ended."""

    @property
    def ok(self) -> bool:
        return (
            self.missing == 0
            and self.twice == 0
            and len(self.confirmed) + len(self.failed) == self.pushed
            and self.worker_restarts == 0
            and self.servers_alive
            and len(self.confirmed) > 0
            and self.pushing_at_faults[0]
        )


def amqp_values(cluster: RabbitMQCluster, mode: str, tag: str) -> dict[str, str]:
    """The AMQP keys every server and pusher share (names of their own, every node)."""
    return {
        "NODES": json.dumps(cluster.addresses),
        "LOGIN": "guest",
        "PASSWORD": "guest",
        "QUEUE_NAME": f"chaos_{tag}",
        "EXCHANGE_NAME": f"chaos_x_{tag}",
        "DEAD_LETTER_EXCHANGE": f"chaos_dlx_{tag}",
        "DEAD_LETTER_QUEUE": f"chaos_dead_{tag}",
        "QUEUE_MODE": mode,
        "QUEUE_TYPE": "quorum",  # per_node queues, and the dead-letter queue in both modes
        "PUSH_TIMEOUT": "90",
        "RECONNECT_INTERVAL": "0.5",
    }


def server_environment(
    cluster: RabbitMQCluster, mode: str, tag: str, tmp: Path, name: str
) -> dict[str, str]:
    routing = tmp / "routing.yaml"
    routing.write_text(yaml.safe_dump(ROUTES))
    env = server_env(
        None,
        SERVER__WORKERS=2,
        SERVER__ROUTER__RESOURCES=json.dumps([str(routing)]),
        PUSHERS__AMQP__ENABLED="true",
        PUSHERS__AMQP__STREAM__PROBE_TIMEOUT="0.3",
        PUSHERS__AMQP__STREAM__NODE_NAME=name,
        PUSHERS__AMQP__STREAM__STATE_DIR=str(tmp / name),
    )
    for key, value in amqp_values(cluster, mode, tag).items():
        env[f"GOS_WEB_SOCKET__PUSHERS__AMQP__{key}"] = value
    return env


def pusher_settings(cluster: RabbitMQCluster, mode: str, tag: str, which: int) -> AmqpSettings:
    """Pusher ``which`` tries node ``which % 3`` first, so the pushers spread over the nodes."""
    values: dict[str, Any] = {
        key.lower(): value for key, value in amqp_values(cluster, mode, tag).items()
    }
    first = which % len(cluster.addresses)
    values["nodes"] = cluster.addresses[first:] + cluster.addresses[:first]
    values["confirm_mode"] = "background" if which >= 2 else "wait"
    return AmqpSettings(enabled=True, **values)


async def start_server(env: dict[str, str]) -> ServerProcess:
    """A server node, once its WAMP port answers and /health says every worker consumes."""
    node = await ServerProcess(env).start()
    await (await node.connect(60)).close()
    await healthy(node, 120, 0.2)
    return node


async def subscribe(node: ServerProcess) -> Subscriber:
    """A recovering v2 subscriber that reads until cancelled."""
    peer = await RecoveringPeer.connect(node.ws_url, CHANNEL)
    subscriber = Subscriber(peer)
    subscriber.task = asyncio.create_task(peer.read(10**9, timeout=3600))
    return subscriber


def pace(started: float, done: int, rate: float) -> float:
    """Seconds to wait so that ``done`` pushes took ``done / rate`` seconds."""
    return max(0.0, started + done / rate - time.monotonic())


async def push_async(pusher: AmqpPusher, numbers: list[int], rate: float, tally: Tally) -> None:
    """``push()`` 20 at a time, each confirmed or ``PushFailed``."""

    async def one(n: int) -> None:
        try:
            await pusher.push({"n": n}, "acme_topic", {"room": "1"})
        except PushFailed:
            tally.failed.add(n)
        else:
            tally.confirmed.add(n)

    started = time.monotonic()
    for at in range(0, len(numbers), 20):
        await asyncio.sleep(pace(started, at, rate))
        batch = numbers[at : at + 20]
        tally.pushed += len(batch)
        await asyncio.gather(*(one(n) for n in batch))


def push_background(
    pusher: AmqpPusher, numbers: list[int], rate: float, tally: Tally, lock: threading.Lock
) -> None:
    """``push_sync()`` in ``background`` mode from a thread; ``flush_sync()`` names the failures."""
    started = time.monotonic()
    handed: set[int] = set()
    failed: set[int] = set()
    for at, n in enumerate(numbers):
        time.sleep(pace(started, at, rate))
        try:
            pusher.push_sync({"n": n}, "acme_topic", {"room": "1"})
        except PushFailed:
            failed.add(n)
        handed.add(n)
    try:
        pusher.close_sync(timeout=None)
    except PushFailed as exc:
        failed |= {failure.data["n"] for failure in exc.failures}
    with lock:
        tally.pushed += len(handed)
        tally.failed |= failed
        tally.confirmed |= handed - failed


async def faults(
    cluster: RabbitMQCluster,
    leader_queue: Callable[[], str],
    tally: Tally,
    say: Callable[[str], None],
) -> None:
    """The leader's node SIGKILLed, back 10 s later; then each node stopped and started."""
    leader = await asyncio.to_thread(cluster.leader_of, leader_queue())
    say(f"SIGKILL {leader.nodename} (leader of {leader_queue()})")
    await asyncio.to_thread(leader.kill)
    await asyncio.sleep(10)
    await asyncio.to_thread(leader.start, 180)
    say(f"{leader.nodename} back")
    tally.faults.append(f"leader {leader.nodename} SIGKILLed, started 10 s later")
    for node in cluster.nodes:
        say(f"rolling restart: stop and start {node.nodename}")
        await asyncio.to_thread(cluster.restart, node)
    tally.faults.append("rolling restart (rabbitmqctl shutdown, start) of all three nodes")
    say("rolling restart done")


async def run(
    cluster: RabbitMQCluster,
    mode: str,
    pushes: int,
    rate: float,
    tmp: Path,
    per_server: int = 4,
    say: Callable[[str], None] = print,
) -> Tally:
    """The whole scenario on a running cluster; returns the counts (``tally.lines``)."""
    tag = uuid.uuid4().hex[:8]
    tally = Tally()
    router = Router(load_routes_from_mapping(ROUTES))
    servers: list[ServerProcess] = []
    subscribers: list[Subscriber] = []
    pushers: list[AmqpPusher] = []
    started = time.monotonic()

    def log(text: str) -> None:
        say(f"[{time.monotonic() - started:6.1f} s] {text}")

    try:
        for index in range(SERVERS):
            servers.append(
                await start_server(server_environment(cluster, mode, tag, tmp, f"chaos{index}"))
            )
        pids = [server.process.pid for server in servers if server.process]
        for server in servers:
            subscribers += [await subscribe(server) for _ in range(per_server)]
        log(f"{SERVERS} servers (workers: 2, {mode}) and {len(subscribers)} subscribers up")
        pushers = [AmqpPusher(pusher_settings(cluster, mode, tag, i), router) for i in range(4)]
        lock = threading.Lock()
        share = rate / PUSHERS
        jobs: list[Awaitable[None]] = []
        for which, pusher in enumerate(pushers):
            numbers = list(range(which, pushes, PUSHERS))
            if pusher.confirm_mode == "background":
                jobs.append(asyncio.to_thread(push_background, pusher, numbers, share, tally, lock))
            else:
                jobs.append(push_async(pusher, numbers, share, tally))
        producing = asyncio.ensure_future(asyncio.gather(*jobs))

        def least_seen() -> int:
            return min(len(s.peer.state.payloads) for s in subscribers if s.peer.state)

        await eventually(
            lambda: least_seen() >= pushes // 5 or producing.done(), within=600, every=0.01
        )
        queue = queue_of(cluster, mode, tag)
        began = not producing.done()
        await faults(cluster, lambda: queue, tally, log)
        tally.pushing_at_faults = (began, not producing.done())
        await asyncio.wait_for(producing, 900)
        log(f"pushers done: {len(tally.confirmed)} confirmed, {len(tally.failed)} failed")
        try:
            await eventually(
                lambda: all(tally.confirmed <= s.seen()[0] for s in subscribers),
                within=180,
                every=0.5,
            )
        except AssertionError:
            log("some subscriber still misses confirmed pushes after 180 s")
        for server in servers:
            await healthy(server, 60, 0.2)
        tally.servers_alive = [s.process.pid for s in servers if s.process] == pids and all(
            s.process is not None and s.process.returncode is None for s in servers
        )
        tally.worker_restarts = sum(len(WORKER_EXIT.findall(s.output)) for s in servers)
    finally:
        for subscriber in subscribers:
            if subscriber.task is not None:
                subscriber.task.cancel()
            subscriber.peer.close()
        for pusher in pushers:
            if pusher.confirm_mode == "wait":
                await pusher.close()
        for server in servers:
            await server.stop()
    account(tally, subscribers, mode, pushes)
    return tally


def queue_of(cluster: RabbitMQCluster, mode: str, tag: str) -> str:
    """The stream, or the first server node's queue (``<queue_name>.<node_id>``)."""
    name = f"chaos_{tag}"
    if mode == "stream":
        return f"{name}.stream"
    return sorted(q for q in cluster.queue_names() if q.startswith(f"{name}."))[0]


def account(tally: Tally, subscribers: list[Subscriber], mode: str, pushes: int) -> None:
    tally.lines.append(
        f"mode {mode}: pushed {tally.pushed} of {pushes}, confirmed {len(tally.confirmed)}, "
        f"push_fail {len(tally.failed)}; faults: {'; '.join(tally.faults)}; pushers still "
        f"sending when the faults began: {tally.pushing_at_faults[0]}, when they ended: "
        f"{tally.pushing_at_faults[1]}"
    )
    for number, subscriber in enumerate(subscribers):
        seen, repeats, twice = subscriber.seen()
        missing = len(tally.confirmed - seen)
        tally.missing += missing
        tally.twice += twice
        tally.lines.append(
            f"  subscriber {number} (server {number // (len(subscribers) // SERVERS)}): "
            f"received {len(seen)}, repeats dropped by position {repeats}, "
            f"seen at two positions {twice}, missing {missing}"
        )
    tally.lines.append(
        f"missing {tally.missing}, seen twice {tally.twice}, worker restarts "
        f"{tally.worker_restarts}, servers never restarted: {tally.servers_alive}"
    )


async def main(mode: str, pushes: int, rate: float, per_server: int) -> int:
    for noisy in ("aiormq", "aio_pika"):  # every reconnect's traceback; the counts tell
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    cluster = RabbitMQCluster()
    print("starting the three-node cluster ...", flush=True)
    try:
        await asyncio.to_thread(cluster.start)
        with TemporaryDirectory(prefix="gos-chaos-") as tmp:
            tally = await run(
                cluster,
                mode,
                pushes,
                rate,
                Path(tmp),
                per_server,
                say=lambda s: print(s, flush=True),
            )
    finally:
        await asyncio.to_thread(cluster.stop)
    print("\n".join(tally.lines))
    return 0 if tally.ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--mode", choices=["stream", "per_node"], default="stream")
    parser.add_argument("--pushes", type=int, default=20000)
    parser.add_argument("--rate", type=float, default=250.0, help="pushes a second, all pushers")
    parser.add_argument("--subscribers", type=int, default=4, help="subscribers per server")
    arguments = parser.parse_args()
    sys.exit(
        asyncio.run(main(arguments.mode, arguments.pushes, arguments.rate, arguments.subscribers))
    )
