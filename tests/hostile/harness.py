"""The attack run: a real server process, good subscribers, pushes at 50/s, attackers by kind.

``run()`` starts `gos-websocket server` (``ServerProcess``), one process of good subscribers
and ``CROWDS`` processes of attackers, pushes ``{"n", "t"}`` through the ZeroMQ pusher at
``RATE`` per second for the whole run, and sends the attack kinds one after another (a phase
per kind, its attackers all at once, spread over the crowd processes), so that every figure of
a phase names the attack that caused it. Measured per phase: pushes lost, push-to-receive
p50 / p99, the RPC probe's worst round trip, server RSS before / peak / after, tracebacks in
the server log, and each attacker's answer; for the whole run: RSS at the start and the end,
and the sessions still registered once every client is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio

from gos_web_socket.app.router import Router, load_routes
from gos_web_socket.app.transports.zmq.pusher import ZmqPusher
from gos_web_socket.settings.models import DEFAULT_ROUTING, ZmqSettings
from tests.hostile.attacks import EXPECTED, Outcome
from tests.ops.conftest import scrape
from tests.support.process import ROOT, ServerProcess, server_env, setting

ROOM = "hostile"
CHANNEL = f"acme/channel/{ROOM}"
RATE = 50
SUBSCRIBERS = 50
CROWDS = 3
CALM = 1.5
SETTLE = 3.0
"""Seconds a phase may wait, after its attackers reported, for their sessions to go."""
"""Seconds without attackers before the first phase (the latency every phase is held to)."""

PLAN: list[tuple[str, int]] = [
    ("ping_flood", 4),
    ("prefix_flood", 4),
    ("subscription_flood", 4),
    ("call_flood", 4),
    ("deep_json", 6),
    ("endless_fragments", 6),
    ("fragment_flood", 8),
    ("endless_tiny_fragments", 8),
    ("pong_flood", 6),
    ("oversized_frame", 6),
    ("invalid_utf8", 6),
    ("binary_on_v1", 6),
    ("garbage_msgpack", 6),
    ("before_hello", 6),
    ("huge_head", 2),
    ("slow_handshake", 8),
    ("silent", 8),
    ("late_handshake", 40),
]
"""Attack kinds in order, each alone in its phase so that a figure names its cause."""

MIXED: dict[str, int] = {
    "ping_flood": 12,
    "prefix_flood": 8,
    "subscription_flood": 8,
    "call_flood": 12,
    "deep_json": 12,
    "endless_fragments": 12,
    "fragment_flood": 8,
    "endless_tiny_fragments": 8,
    "pong_flood": 8,
    "oversized_frame": 12,
    "invalid_utf8": 12,
    "binary_on_v1": 12,
    "garbage_msgpack": 12,
    "before_hello": 12,
    "huge_head": 2,
    "slow_handshake": 16,
    "silent": 16,
    "late_handshake": 18,
}
"""The last phase, ``mixed``: every kind at once, 200 attackers (the issue's run)."""

MiB = 1 << 20


def rss(pid: int, field: str = "VmRSS") -> int:
    """Resident bytes of a process from /proc; ``field="VmHWM"`` gives its peak so far."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise LookupError(f"no {field} for pid {pid}")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Phase:
    """One part of the run: ``plan`` (kind → attackers) all at once; ``name`` is the kind's,
    or ``mixed`` for every kind together, or ``calm`` for none."""

    name: str
    plan: dict[str, int]
    outcomes: list[Outcome] = field(default_factory=list)
    pushes: list[int] = field(default_factory=list)
    """Numbers of the pushes sent while this phase ran."""
    latencies_ms: list[float] = field(default_factory=list)
    lost: int = 0
    rss_before: int = 0
    rss_peak: int = 0
    rss_after: int = 0
    tracebacks: int = 0
    rpc_worst_ms: float = 0.0
    seconds: float = 0.0
    began: int = 0
    ended: int = 0
    """``time.monotonic_ns()`` when the phase began and ended (shared by every process)."""

    @property
    def attackers(self) -> int:
        return sum(self.plan.values())

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies_ms, 0.50)

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies_ms, 0.99)

    @property
    def rss_growth_mib(self) -> float:
        return (self.rss_peak - self.rss_before) / MiB

    def answers(self, kind: str = "") -> dict[str, int]:
        """How many attackers (of ``kind``, or all) got each answer (``close 1008``: 12)."""
        counts: dict[str, int] = {}
        for outcome in self.outcomes:
            if not kind or outcome.kind == kind:
                counts[outcome.answer] = counts.get(outcome.answer, 0) + 1
        return counts

    def unexpected(self, kind: str) -> dict[str, int]:
        """Answers to attackers of ``kind`` other than the documented one (EXPECTED)."""
        allowed = EXPECTED[kind]
        return {answer: n for answer, n in self.answers(kind).items() if answer not in allowed}


@dataclass
class Run:
    phases: list[Phase]
    rss_start: int = 0
    rss_end: int = 0
    rss_peak: int = 0
    sessions_after: int = -1
    tracebacks: int = 0
    seconds: float = 0.0
    subscribers_closed: list[str] = field(default_factory=list)
    log_excerpt: str = ""

    def phase(self, name: str) -> Phase:
        return next(p for p in self.phases if p.name == name)


class _Child:
    """A helper process speaking JSON lines on stdin / stdout."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, module: str, *args: object) -> _Child:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, *map(str, args), cwd=ROOT,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 26,
        )  # fmt: skip
        return cls(process)

    async def ask(self, line: str = "", timeout: float = 60.0) -> Any:  # noqa: ASYNC109
        assert self.process.stdin is not None and self.process.stdout is not None
        if line:
            self.process.stdin.write(line.encode() + b"\n")
            await self.process.stdin.drain()
        answer = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        if not answer:
            raise RuntimeError(f"helper process exited with {await self.process.wait()}")
        return json.loads(answer)

    async def stop(self) -> None:
        if self.process.returncode is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


@contextlib.asynccontextmanager
async def _children(server: ServerProcess, crowds: int) -> AsyncIterator[list[_Child]]:
    """The subscribers' process (first) and the crowd processes, stopped on exit."""
    host, port = "127.0.0.1", int(setting(server.env, "SERVER__PORT"))
    started: list[_Child] = []
    try:
        started.append(
            await _Child.start("tests.hostile.subscribers", host, port, CHANNEL, SUBSCRIBERS)
        )
        for _ in range(crowds):
            started.append(await _Child.start("tests.hostile.crowd", host, port))
        yield started
    finally:
        for child in started:
            await child.stop()


def _tracebacks(server: ServerProcess) -> int:
    return server.output.count("Traceback (most recent call last)")


async def _wait_sessions(server: ServerProcess, within: float, down_to: int = 0) -> int:
    """Registered sessions, polled until at most ``down_to`` are left and the server answers
    ``/metrics`` within 50 ms (it is idle again), or ``within`` seconds passed (-1: the
    server did not answer ``/metrics`` at all)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        asked = loop.time()
        try:
            sessions = int((await scrape(server.metrics_port))["gos_websocket_connections"])
        except OSError:  # also a timeout: the server is too busy to answer /metrics
            sessions = -1
        idle = loop.time() - asked < 0.05
        if (idle and 0 <= sessions <= down_to) or loop.time() > deadline:
            return sessions
        await asyncio.sleep(0.2)  # between two scrapes (each costs the server a little)


async def received(subscribers: _Child, last: int, within: float = 10.0) -> None:
    """Return once every open subscriber got push ``last`` (pushes arrive in order), or after
    ``within`` seconds (what is missing then counts as lost)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        report = await subscribers.ask("last")
        if all(c or n >= last for n, c in zip(report["last"], report["closed"], strict=True)):
            return
        await asyncio.sleep(0.05)  # between two asks of the subscribers' process


async def start_server(**settings: str) -> tuple[ServerProcess, int]:
    """A fresh server process (every log line kept, no HTTP) once it took a WebSocket, and its
    pid; ``settings`` as for ``server_env``. The caller stops it."""
    env = server_env(LOGGING__RATE_LIMIT__BURST=0, SERVER__HTTP__ENABLED="false", **settings)
    server = await ServerProcess(env).start()
    try:
        await (await server.connect()).close()
    except BaseException:
        await server.stop()
        raise
    assert server.process is not None
    return server, server.process.pid


async def run(
    plan: list[tuple[str, int]] | None = None,
    mixed: dict[str, int] | None = None,
    crowds: int = CROWDS,
    settings: dict[str, str] | None = None,
) -> Run:
    """Attack a fresh server process: each kind of ``plan`` alone, then ``mixed`` at once;
    ``settings`` as for ``server_env`` (``SERVER__LIMITS__FRAMES_BURST="250"``)."""
    plan = PLAN if plan is None else plan
    mixed = MIXED if mixed is None else mixed
    server, pid = await start_server(**(settings or {}))
    started = time.monotonic()
    try:
        phases = [Phase("calm", {}), *(Phase(kind, {kind: n}) for kind, n in plan)]
        if mixed:
            phases.append(Phase("mixed", mixed))
        result = Run(phases)
        async with _children(server, crowds) as (subscribers, *crowd):
            await subscribers.ask(timeout=60)
            result.rss_start = rss(pid)
            await _attack(server, pid, result, subscribers, crowd)
        result.sessions_after = await _wait_sessions(server, within=8.0)
        result.rss_end = rss(pid)
        result.tracebacks = _tracebacks(server)
        result.seconds = round(time.monotonic() - started, 1)
        return result
    finally:
        await server.stop()
        if "result" in locals():
            result.log_excerpt = server.output[-4000:]


async def _attack(
    server: ServerProcess, pid: int, result: Run, subscribers: _Child, crowd: list[_Child]
) -> None:
    zmq = ZmqSettings(port=int(setting(server.env, "PUSHERS__ZMQ__PORT")))
    pusher = ZmqPusher(zmq, Router(load_routes(DEFAULT_ROUTING)))
    current: list[Phase] = [result.phases[0]]
    sent_at: dict[int, Phase] = {}
    stop = asyncio.Event()

    async def push() -> None:
        loop = asyncio.get_running_loop()
        first = loop.time()
        n = 0
        while not stop.is_set():
            n += 1
            phase = current[0]
            sent_at[n] = phase
            phase.pushes.append(n)
            data = {"n": n, "t": time.monotonic_ns()}
            await pusher.push(data, "acme_topic", {"room": ROOM})
            await asyncio.sleep(max(0.0, first + n / RATE - loop.time()))  # the pace: RATE/s

    async def sample() -> None:
        while not stop.is_set():
            phase = current[0]
            phase.rss_peak = max(phase.rss_peak, rss(pid))
            await asyncio.sleep(0.02)  # the sampling period

    tasks = [asyncio.create_task(push()), asyncio.create_task(sample())]
    try:
        calm = result.phases[0]
        calm.rss_before = rss(pid)
        calm.began = time.monotonic_ns()
        await asyncio.sleep(CALM)  # the calm phase is this window of pushes, no attacker
        calm.rss_after = rss(pid)
        for previous, phase in zip(result.phases, result.phases[1:], strict=False):
            tracebacks = _tracebacks(server)
            phase.rss_before = phase.rss_peak = rss(pid)
            current[0] = phase
            began = time.monotonic()
            phase.began = previous.ended = time.monotonic_ns()
            answers = await asyncio.gather(
                *(
                    child.ask(json.dumps(share))
                    for child, share in zip(crowd, _split(phase.plan, len(crowd)), strict=True)
                )
            )
            # A phase's window of pushes is at least 1 s, however fast its attackers end.
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - began)))
            # The phase lasts until its attackers' sessions are gone from the server (what
            # they still cost counts against them, not against the next kind).
            await _wait_sessions(server, within=SETTLE, down_to=SUBSCRIBERS + 1)
            phase.outcomes = [Outcome(**o) for answer in answers for o in answer]
            phase.seconds = round(time.monotonic() - began, 2)
            phase.rss_after = rss(pid)
            phase.tracebacks = _tracebacks(server) - tracebacks
        stop.set()
        result.phases[-1].ended = time.monotonic_ns()
        await asyncio.gather(*tasks)
        await received(subscribers, max(sent_at, default=0))
        report = await subscribers.ask("collect")
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await pusher.close()
    _account(result, report, sent_at)


def _split(plan: dict[str, int], parts: int) -> list[dict[str, int]]:
    """``plan`` dealt over ``parts`` processes as evenly as possible, kind by kind."""
    shares: list[dict[str, int]] = [{} for _ in range(parts)]
    turn = 0
    for kind, count in plan.items():
        for _ in range(count):
            shares[turn % parts][kind] = shares[turn % parts].get(kind, 0) + 1
            turn += 1
    return shares


def _account(result: Run, report: dict[str, Any], sent_at: dict[int, Any]) -> None:
    """Losses and latencies per phase, from what every subscriber received."""
    for events in report["events"]:
        got = {n for n, _ in events}
        for n, delay in events:
            phase = sent_at.get(n)
            if phase is not None:
                phase.latencies_ms.append(delay / 1e6)
        for phase in result.phases:
            phase.lost += sum(1 for n in phase.pushes if n not in got)
    result.subscribers_closed = [c for c in report["closed"] if c]
    result.rss_peak = max(p.rss_peak for p in result.phases)
    for phase in result.phases:
        window = [rtt for sent, rtt in report["rpc_rtt"] if phase.began <= sent < phase.ended]
        phase.rpc_worst_ms = max(window) / 1e6 if window else 0.0


async def zmq_frame_growth(megabytes: int = 100) -> tuple[float, bool]:
    """Send one frame of ``megabytes`` MB to a fresh server's ZeroMQ push handler.

    Returns how much the server's peak RSS (``VmHWM``) grew, in MiB, and whether a normal
    push sent afterwards still reached a subscriber.
    """
    server = await ServerProcess(server_env()).start()
    context = zmq.asyncio.Context()
    try:
        subscriber = await server.subscriber(f"acme/channel/{ROOM}")
        assert server.process is not None
        peak_before = rss(server.process.pid, "VmHWM")
        port = int(setting(server.env, "PUSHERS__ZMQ__PORT"))
        sock = context.socket(zmq.PUSH)
        sock.setsockopt(zmq.LINGER, 0)
        cut = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        sock.connect(f"tcp://127.0.0.1:{port}")
        await sock.send(b'{"topic": "' + b"x" * (megabytes * 1_000_000) + b'"}')
        await asyncio.wait_for(cut.recv_multipart(), 30)  # the server cut this peer off
        sock.disable_monitor()
        cut.close()
        sock.close()
        growth = (rss(server.process.pid, "VmHWM") - peak_before) / MiB
        pusher = ZmqPusher(ZmqSettings(port=port), Router(load_routes(DEFAULT_ROUTING)))
        try:
            await pusher.push({"after": True}, "acme_topic", {"room": ROOM})
            delivered = await subscriber.next_event(CHANNEL, timeout=5) == {"after": True}
        except TimeoutError:
            delivered = False
        finally:
            await pusher.close()
            await subscriber.close()
        return growth, delivered
    finally:
        context.destroy(linger=0)
        await server.stop()
