"""``python -m bench wamp2``: our WAMP v2 router side by side with Crossbar, in one run.

Crossbar (PyPI ``crossbar``, the reference WAMP router, itself Python) pins old
dependencies, so it lives in a venv of its own, ``bench/.venv-crossbar`` (``make
crossbar-venv``, which ``make bench-full`` runs). Each router is started in turn on a free
loopback port, alone, and gets the same two scenarios from the same clients:

- **calls**: an autobahn-python callee registers ``com.bench.echo``; an autobahn-python caller
  keeps ``WINDOW`` calls in flight until ``calls`` are answered: round trips per second and
  the p50 / p99 of one call (send to RESULT), after a warm-up of up to 500 calls;
- **fan-out**: ``subscribers`` raw WAMP v2 JSON sessions subscribe ``acme/channel/bench``; an
  autobahn-python publisher publishes ``events`` events (``acknowledge``, one at a time, each
  once the previous reached everyone): deliveries per second and the p50 / p99 from PUBLISH to
  one subscriber's EVENT.

Each figure also has the router's CPU time per call or per delivery (its process tree, read
before and after the scenario): the clients run in this one process, so on a small machine
the rates are partly the clients'; the CPU per operation is the router's alone.

Ours runs the demo routes plus a route of client procedures, one process (``workers: 1``),
the flood budgets raised for the subscribers' one address; Crossbar one router worker, realm
``realm1``, anonymous with every permission. Both on the stdlib asyncio / Twisted default
loops. Prints and returns one JSON object with both systems and the ratios ours / Crossbar.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil

from bench.hundred_k import cpu_seconds
from bench.runner import free_port
from gos_web_socket.app.testing import RawPeer, V2Client

HERE = Path(__file__).resolve().parent
CROSSBAR = HERE / ".venv-crossbar" / "bin" / "crossbar"
TOPIC = "acme/channel/bench"
PROCEDURE = "com.bench.echo"
WINDOW = 8
ROUTES = """
acme_topic:
  pattern: "acme/channel/{room}"
  callback: "acme.topic"
bench_procedures:
  pattern: "com.bench.{name}"
  options:
    auth:
      register: anyone
"""
LIMITS = {
    "MESSAGES_PER_SECOND": 100_000,
    "MESSAGES_BURST": 100_000,
    "FRAMES_PER_SECOND": 100_000,
    "FRAMES_BURST": 100_000,
    "MAX_PENDING_CALLS": 1_000,
    "MAX_PENDING_INVOCATIONS": 1_000,
}


def milliseconds(values: list[float]) -> dict[str, float]:
    """p50 and p99 of durations in seconds, in ms."""
    p99 = statistics.quantiles(values, n=100)[98] if len(values) > 1 else values[0]
    return {"p50_ms": round(statistics.median(values) * 1000, 2), "p99_ms": round(p99 * 1000, 2)}


@contextlib.asynccontextmanager
async def ours(workdir: Path) -> AsyncIterator[tuple[str, int]]:
    """Our server on a free port; its ws:// URL and pid."""
    routes = workdir / "routing.yaml"
    routes.write_text(ROUTES)
    port = free_port()
    env = {
        **os.environ,
        "GOS_WEB_SOCKET__SERVER__PORT": str(port),
        "GOS_WEB_SOCKET__SERVER__HTTP__PORT": "0",
        "GOS_WEB_SOCKET__SERVER__METRICS__PORT": str(free_port()),
        "GOS_WEB_SOCKET__PUSHERS__ZMQ__PORT": str(free_port()),
        "GOS_WEB_SOCKET__SERVER__ROUTER__RESOURCES": f'["{routes}"]',
    }
    env |= {f"GOS_WEB_SOCKET__SERVER__LIMITS__{key}": str(value) for key, value in LIMITS.items()}
    argv = [sys.executable, "-m", "gos_web_socket.app", "server"]
    async with _process(argv, env, port, workdir / "ours.log") as started:
        yield started


@contextlib.asynccontextmanager
async def crossbar(workdir: Path) -> AsyncIterator[tuple[str, int]]:
    """Crossbar on a free port (its own venv); its ws:// URL and pid (its router worker is a
    child process)."""
    if not CROSSBAR.exists():
        raise SystemExit(f"{CROSSBAR} is missing: run `make crossbar-venv`")
    port = free_port()
    cbdir = workdir / ".crossbar"
    cbdir.mkdir()
    (cbdir / "config.json").write_text(json.dumps(crossbar_config(port)))
    argv = [str(CROSSBAR), "start", "--cbdir", str(cbdir), "--loglevel", "warn"]
    async with _process(argv, dict(os.environ), port, workdir / "crossbar.log") as started:
        yield started


def crossbar_config(port: int) -> dict[str, Any]:
    everything = {"call": True, "register": True, "publish": True, "subscribe": True}
    permission = {"uri": "", "match": "prefix", "allow": everything}
    permission |= {"disclose": {"caller": False, "publisher": False}, "cache": True}
    role = {"name": "anonymous", "permissions": [permission]}
    transport = {
        "type": "websocket",
        "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": port},
        "serializers": ["json", "msgpack"],
    }
    worker = {
        "type": "router",
        "realms": [{"name": "realm1", "roles": [role]}],
        "transports": [transport],
    }
    return {"version": 2, "workers": [worker]}


@contextlib.asynccontextmanager
async def _process(
    argv: list[str], env: dict[str, str], port: int, log: Path
) -> AsyncIterator[tuple[str, int]]:
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *argv, env=env, stdout=out, stderr=out, stdin=asyncio.subprocess.DEVNULL
        )
    url = f"ws://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.returncode is not None:
                raise RuntimeError(f"{argv[0]} exited, see {log}")
            try:
                client = await V2Client.join(url)
                await client.leave()
                break
            except (OSError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        yield url, process.pid
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()


async def calls(url: str, count: int, serializer: str) -> dict[str, float]:
    """Round trips per second and latency of ``count`` calls, ``WINDOW`` in flight."""
    callee = await V2Client.join(url, serializer=serializer)
    caller = await V2Client.join(url, serializer=serializer)
    await callee.session.register(lambda value: value, PROCEDURE)
    latencies: list[float] = []
    queue = iter(range(count))

    async def one_lane() -> None:
        for n in queue:
            sent = time.perf_counter()
            assert await caller.session.call(PROCEDURE, n) == n
            latencies.append(time.perf_counter() - sent)

    started = time.perf_counter()
    await asyncio.gather(*(one_lane() for _ in range(WINDOW)))
    elapsed = time.perf_counter() - started
    for client in (caller, callee):
        await client.leave()
    return {
        "calls_per_s": round(count / elapsed, 1),
        **{f"call_{key}": value for key, value in milliseconds(latencies).items()},
    }


async def fanout(url: str, subscribers: int, events: int) -> dict[str, float]:
    """Deliveries per second and PUBLISH-to-EVENT latency to ``subscribers`` sessions."""
    peers = []
    for request in range(subscribers):
        peer = await RawPeer.connect(url, timeout=30)
        assert (await peer.hello())[0] == 2
        peer.send([32, request + 1, {}, TOPIC])
        peers.append(peer)
    for peer in peers:
        assert (await peer.receive(timeout=30))[0] == 33  # SUBSCRIBED
    publisher = await V2Client.join(url)
    latencies: list[float] = []
    started = time.perf_counter()
    for n in range(events):
        sent = time.perf_counter()
        await publisher.session.publish(TOPIC, {"n": n}, options=_ACKNOWLEDGE)
        for peer in peers:
            event = await peer.receive(timeout=60)
            assert event[0] == 36, event
            latencies.append(time.perf_counter() - sent)
    elapsed = time.perf_counter() - started
    await publisher.leave()
    for peer in peers:
        peer.close()
    return {
        "deliveries_per_s": round(subscribers * events / elapsed, 1),
        **{f"event_{key}": value for key, value in milliseconds(latencies).items()},
    }


def _acknowledge() -> Any:
    from autobahn.wamp.types import PublishOptions

    return PublishOptions(acknowledge=True, exclude_me=True)


_ACKNOWLEDGE = _acknowledge()


def tree_cpu(pid: int) -> float:
    """CPU seconds of a router's processes so far (Crossbar's router worker is a child)."""
    children = psutil.Process(pid).children(recursive=True)
    return cpu_seconds([pid, *(child.pid for child in children)])


async def run(
    count: int = 5_000,
    subscribers: int = 1_000,
    events: int = 20,
    serializer: str = "msgpack",
    systems: tuple[str, ...] = ("ours", "crossbar"),
) -> dict[str, Any]:
    """Both routers, one after the other, the same scenarios; figures and ratios."""
    starters = {"ours": ours, "crossbar": crossbar}
    results: dict[str, Any] = {
        "sizes": {"calls": count, "window": WINDOW, "subscribers": subscribers, "events": events},
        "serializer": serializer,
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    with tempfile.TemporaryDirectory(prefix="bench-wamp2-") as tmp:
        for system in systems:
            workdir = Path(tmp) / system
            workdir.mkdir()
            async with starters[system](workdir) as (url, pid):
                await calls(url, min(count, 500), serializer)  # warm-up, not counted
                cpu = tree_cpu(pid)
                figures = await calls(url, count, serializer)
                figures["cpu_us_per_call"] = round((tree_cpu(pid) - cpu) / count * 1e6, 1)
                cpu = tree_cpu(pid)
                figures |= await fanout(url, subscribers, events)
                spent = (tree_cpu(pid) - cpu) / (subscribers * events)
                figures["cpu_us_per_delivery"] = round(spent * 1e6, 1)
            results[system] = figures
    if "ours" in results and "crossbar" in results:
        ours_, theirs = results["ours"], results["crossbar"]
        results["ratio_ours_over_crossbar"] = {
            key: round(ours_[key] / theirs[key], 2) for key in ours_ if theirs.get(key)
        }
    return results


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench wamp2", description=__doc__)
    parser.add_argument("--calls", type=int, default=5_000)
    parser.add_argument("--subscribers", type=int, default=1_000)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--serializer", default="msgpack", choices=["json", "msgpack"])
    parser.add_argument("--systems", default="ours,crossbar")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    systems = tuple(args.systems.split(","))
    results = asyncio.run(run(args.calls, args.subscribers, args.events, args.serializer, systems))
    text = json.dumps(results, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    return 0
