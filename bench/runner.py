"""The scenarios: start a system, its subscribers and its pusher in separate processes, measure.

Every case starts fresh processes; the systems of one figure run one after another in the same
run (rotating their order between repetitions), so background load hits them alike.
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psutil

from bench.agent import Child, call_all


@dataclass(frozen=True)
class System:
    """How one system under test is run: its server and pusher agents (bench/agent.py KINDS)."""

    server: str
    pusher: str
    dialect: str = "wamp"
    exchange: str = ""
    """The raw pushers' exchange (each raw server consumes its own queue)."""
    env: tuple[tuple[str, str], ...] = ()
    """Environment of our server process: settings overrides such as the number of workers."""
    gc_freeze: bool = True
    """Ours only: False undoes ``Runtime.start``'s ``gc.freeze()`` (the A/B of that change)."""
    turn_pushes: int = 0
    """Ours only: pushes let through per loop turn by the memory budget (memory.TURN_PUSHES,
    64) when not 0: the A/B of issue 24's turn cap (issue 25)."""
    code_env: str = ""
    """Ours only: the environment variable naming a directory with a ``gos_web_socket`` link
    to another checkout, whose server this system runs (``BENCH_BASELINE``)."""


def _workers(count: str) -> tuple[tuple[str, str], ...]:
    """The environment of a CLI variant with ``server.workers: count``."""
    return (
        ("GOS_WEB_SOCKET__SERVER__WORKERS", count),
        ("GOS_WEB_SOCKET__PUSHERS__AMQP__QUEUE_MODE", "per_node"),
    )


SYSTEM_TABLE: dict[str, System] = {
    "ours": System("ours_server", "ours_pusher"),
    "sio": System("sio_server", "sio_pusher", dialect="sio"),
    "raw": System("raw_server", "raw_pusher", exchange="bench_raw"),
    "picows": System("picows_server", "raw_pusher", exchange="bench_picows"),
    "websockets": System("websockets_server", "raw_pusher", exchange="bench_websockets"),
    "ours-nofreeze": System("ours_server", "ours_pusher", gc_freeze=False),
    "ours-turn1k": System("ours_server", "ours_pusher", turn_pushes=1024),
    # The same server on uvloop (server.event_loop: uvloop; bench/agent.py UVLOOP_KINDS).
    "ours-uvloop": System("ours-uvloop_server", "ours_pusher"),
    # Ours from another checkout, for an A/B in one run: BENCH_BASELINE=/tmp/base where
    # /tmp/base/gos_web_socket links to that checkout (e.g. main).
    "ours-baseline": System("ours_server", "ours_pusher", code_env="BENCH_BASELINE"),
    # `gos-websocket server` itself (the CLI, as `make run` starts it; bench/servers.py
    # OursCliServer) with `server.workers` 1, 2 and auto (one per core). Only the CLI starts
    # workers; AMQP then needs a queue per worker (queue_mode per_node), so all three use it.
    "ours-w1": System("ours-cli_server", "ours_pusher", env=_workers("1")),
    "ours-w2": System("ours-cli_server", "ours_pusher", env=_workers("2")),
    "ours-wauto": System("ours-cli_server", "ours_pusher", env=_workers("auto")),
    # The CLI with workers: 1 on asyncio's own loop (server.event_loop: asyncio; the CLI's
    # default, auto, takes uvloop when installed): which of the two costs what (issue 25).
    "ours-w1-asyncio": System(
        "ours-cli_server",
        "ours_pusher",
        env=(*_workers("1"), ("GOS_WEB_SOCKET__SERVER__EVENT_LOOP", "asyncio")),
    ),
}
SYSTEMS = ("ours", "ours-wauto", "sio", "raw", "picows", "websockets")
"""The default run; ``--systems`` may name any key of ``SYSTEM_TABLE``."""
_SYNC_SYSTEMS = ("ours", "sio", "raw")
"""The sync-push figure is about the pusher; the coalescing raw limits push as raw does."""


@dataclass(frozen=True)
class Profile:
    """Counts and durations of one run mode."""

    name: str
    ns: tuple[int, ...] = (1, 100, 1000)
    deliveries: int = 200_000  # per throughput case: pushes = deliveries / N (bounded below)
    max_pushes: int = 5_000
    # Offered push rates for the latency figures: below every system's capacity on 2 cores
    # (python-socketio delivers about 10 pushes/s to 1,000 subscribers), so latency is not queueing.
    # N = 100 at 100 pushes/s: issue 18's latency-under-load point (it was 30 /s before).
    rates: dict[int, float] = field(default_factory=lambda: {1: 200.0, 100: 100.0, 1000: 5.0})
    rate_seconds: float = 3.0
    idle_counts: tuple[int, ...] = (1000, 5000)
    sync_count: int = 300
    reps: int = 1
    case_timeout: float = 60.0
    recovery_clients: int = 5000
    big_n: int = 10_000
    """Subscribers of the ``zmq10k``/``amqp10k`` burst (issue 25)."""
    big_pushes: int = 300
    big_systems: tuple[str, ...] = ("ours-w1", "ours", "picows")
    """The server as users run it, ours in the bench process, and the raw limit it is held to."""


QUICK = Profile("quick", deliveries=150_000, max_pushes=2_000, rate_seconds=3.0, sync_count=300)
FULL = Profile(
    "full", deliveries=400_000, max_pushes=10_000, rate_seconds=10.0, sync_count=2_000, reps=3
)


def fleets_for(n: int) -> int:
    """Client processes: one per 500 subscribers, so the fleet is not the bottleneck."""
    return max(1, min(4, (n + 499) // 500))


def split(n: int, parts: int) -> list[int]:
    return [n // parts + (1 if i < n % parts else 0) for i in range(parts)]


def ws_url(dialect: str, port: int) -> str:
    if dialect == "sio":
        return f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
    return f"ws://127.0.0.1:{port}/"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def percentile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


class Setup:
    """One system's server, subscriber fleets and pusher, stopped together."""

    def __init__(self, system: str, transport: str, broker: str) -> None:
        self.system = system
        self.spec = spec = SYSTEM_TABLE[system]
        self.transport = transport
        self.children: list[Child] = []
        kwargs: dict[str, Any] = {"amqp_url": broker}
        if spec.dialect != "sio":
            kwargs.update(transport=transport, zmq_port=free_port() if transport == "zmq" else 0)
        if transport == "stream":  # a stream of its own for each case
            kwargs["tag"] = uuid.uuid4().hex[:8]
        self.kwargs = kwargs
        server_kwargs = kwargs
        if spec.server in ("ours_server", "ours-cli_server"):
            server_kwargs = dict(kwargs, env=dict(spec.env), gc_freeze=spec.gc_freeze)
            if spec.turn_pushes:
                server_kwargs["turn_pushes"] = spec.turn_pushes
            if spec.code_env:
                code = os.environ.get(spec.code_env, "")
                if not code:
                    raise RuntimeError(f"{system}: set {spec.code_env} (see SYSTEM_TABLE)")
                server_kwargs["code"] = code
        self.server = self._child(spec.server, **server_kwargs)
        self.port = self.server.call("start", timeout=60)
        self.server_pid = self.server.pid
        """The server's own process: the agent, or the CLI process under it (not the agent)."""
        if spec.server == "ours-cli_server":
            self.server_pid = self.server.call("pid")
        self.dialect = spec.dialect
        self.url = ws_url(self.dialect, self.port)
        self.fleets: list[Child] = []
        self.pusher: Child | None = None

    def _child(self, kind: str, **kwargs: Any) -> Child:
        child = Child(kind, **kwargs)
        self.children.append(child)
        return child

    def connect(self, n: int, fleets: int) -> int:
        while len(self.fleets) < fleets:
            self.fleets.append(self._child("fleet"))
        args = [(self.url, self.dialect, k) for k in split(n, len(self.fleets))]
        return sum(call_all(self.fleets, "connect", args, timeout=180))

    def start_pusher(self) -> Child:
        kwargs = dict(self.kwargs)
        if self.spec.exchange:
            kwargs["exchange"] = self.spec.exchange
        self.pusher = self._child(self.spec.pusher, **kwargs)
        self.pusher.call("start", timeout=60)
        return self.pusher

    def fleet_sum(self, cmd: str) -> int:
        return sum(call_all(self.fleets, cmd, [()] * len(self.fleets), timeout=30))

    def warm_up(self, n: int, timeout: float = 30.0) -> None:
        """Push warm-ups until every subscriber got one: subscriptions and consumers work."""
        assert self.pusher is not None
        deadline = time.monotonic() + timeout
        while self.fleet_sum("ready") < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.system}: only {self.fleet_sum('ready')}/{n} ready")
            self.pusher.call("warmup")
            time.sleep(0.2)
        time.sleep(0.3)  # let the last warm-ups land before counting starts

    def wait_delivered(self, expected: int, timeout: float, stall: float = 5.0) -> int:
        """Poll until all frames arrived, the count stalls for ``stall`` s, or ``timeout``."""
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while True:
            got = self.fleet_sum("count")
            now = time.monotonic()
            if got >= expected or now > deadline:
                return got
            if got != last:
                last, since = got, now
            elif now - since > stall:
                return got
            time.sleep(0.05)

    def collect(self) -> list[dict[str, Any]]:
        return call_all(self.fleets, "collect", [()] * len(self.fleets), timeout=60)

    def server_processes(self) -> list[psutil.Process]:
        """The server's process and every process under it (workers, when a variant has
        them); for the CLI, not the bench agent that started it."""
        root = psutil.Process(self.server_pid)
        return [root, *root.children(recursive=True)]

    def cpu_by_process(self) -> dict[int, tuple[float, float]]:
        """User and system CPU seconds so far of each server process, by pid (the first is
        the server's own process: with workers, the parent)."""
        out: dict[int, tuple[float, float]] = {}
        for proc in self.server_processes():
            try:
                times = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            out[proc.pid] = (times.user, times.system)
        return out

    def agent_cpu(self) -> float:
        """CPU seconds of the bench agent above the CLI (0 for an in-process server, whose
        agent is the server): not the server's, reported to show what it would add."""
        if self.server_pid == self.server.pid:
            return 0.0
        times = psutil.Process(self.server.pid).cpu_times()
        return float(times.user + times.system)

    def server_cpu(self) -> tuple[float, float]:
        """User and system CPU seconds of the server's processes so far (children that
        ended are not counted: workers live for the whole case)."""
        times = self.cpu_by_process().values()
        return sum(t[0] for t in times), sum(t[1] for t in times)

    def server_rss(self) -> int:
        total = 0
        for proc in self.server_processes():
            try:
                total += proc.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()


def cpu_split(
    before: dict[int, tuple[float, float]],
    after: dict[int, tuple[float, float]],
    pushes: int,
    delivered: int,
) -> dict[str, Any]:
    """The server's CPU between two ``cpu_by_process`` snapshots: user and system summed over
    its processes and, with workers, the parent's µs per push and each worker's seconds (a
    worker's µs per delivery assumes SO_REUSEPORT gave it an even share of the subscribers)."""
    deltas = {
        pid: (times[0] - before[pid][0], times[1] - before[pid][1])
        for pid, times in after.items()
        if pid in before
    }
    out: dict[str, Any] = {
        "user": sum(d[0] for d in deltas.values()),
        "system": sum(d[1] for d in deltas.values()),
    }
    if len(deltas) < 2:
        return out
    parent, *workers = deltas.values()
    share = max(delivered, 1) / len(workers)
    out["parent_cpu_us_per_push"] = round(sum(parent) / max(pushes, 1) * 1e6, 1)
    out["worker_cpu_s"] = [round(sum(w), 3) for w in workers]
    out["busiest_worker_us_per_delivery"] = round(max(sum(w) for w in workers) / share * 1e6, 3)
    return out


def measure_burst(setup: Setup, n: int, pushes: int, timeout: float) -> dict[str, Any]:
    """Deliveries/s and server CPU for ``pushes`` pushed at once (100 in flight) to N ready
    subscribers."""
    assert setup.pusher is not None
    call_all(setup.fleets, "reset", [(False,)] * len(setup.fleets), timeout=10)
    before, agent0 = setup.cpu_by_process(), setup.agent_cpu()
    sent = setup.pusher.call("burst", pushes, 100, timeout=timeout)
    got = setup.wait_delivered(pushes * n, timeout)
    split_cpu = cpu_split(before, setup.cpu_by_process(), pushes, got)
    split_cpu["agent_cpu_s"] = round(setup.agent_cpu() - agent0, 3)
    user, system_ = split_cpu.pop("user"), split_cpu.pop("system")
    cpu = user + system_
    stats = setup.collect()
    last = max(s["last"] for s in stats if s["count"]) if got else sent["t1"]
    seconds = (last - sent["t0"]) / 1e9
    return {
        "scenario": f"{setup.transport}_push",
        "system": setup.system,
        "transport": setup.transport,
        "n": n,
        "pushes": pushes,
        "delivered": got,
        "expected": pushes * n,
        "seconds": round(seconds, 4),
        "deliveries_per_s": round(got / seconds, 1),
        "pushes_per_s": round(got / n / seconds, 1),
        "server_processes": len(setup.server_processes()),
        "server_cpu_s": round(cpu, 3),
        "server_cpu_us_per_delivery": round(cpu / max(got, 1) * 1e6, 3),
        "server_user_us_per_delivery": round(user / max(got, 1) * 1e6, 3),
        "server_sys_us_per_delivery": round(system_ / max(got, 1) * 1e6, 3),
        **split_cpu,
    }


def ready_setup(system: str, transport: str, n: int, broker: str, fleets: int) -> Setup:
    """A system's server with N subscribers in ``fleets`` processes, each warmed up."""
    setup = Setup(system, transport, broker)
    try:
        connected = setup.connect(n, fleets)
        if connected != n:
            raise RuntimeError(f"{system}: {connected}/{n} subscribers connected")
        setup.start_pusher()
        setup.warm_up(n, timeout=max(30.0, n / 200))
    except BaseException:
        setup.stop()
        raise
    return setup


def push_case(system: str, transport: str, n: int, broker: str, p: Profile) -> dict[str, Any]:
    """Deliveries/s for a burst, then latency at a fixed offered rate, to N subscribers."""
    setup = ready_setup(system, transport, n, broker, fleets_for(n))
    try:
        pushes = max(20, min(p.max_pushes, p.deliveries // n))
        row = measure_burst(setup, n, pushes, p.case_timeout)
        pusher = setup.pusher
        assert pusher is not None

        rate = p.rates[n]
        call_all(setup.fleets, "reset", [(True,)] * len(setup.fleets), timeout=10)
        setup.server.call("gc")  # the server's collections during the latency window
        cpu0 = sum(setup.server_cpu())
        offered = pusher.call("rate", rate, p.rate_seconds, timeout=p.rate_seconds + 60)
        expected = offered["sent"] * n
        got_lat = setup.wait_delivered(expected, 30)
        lat_cpu = sum(setup.server_cpu()) - cpu0  # includes the idle polling after the window
        gc_stats = {f"lat_{k}": v for k, v in setup.server.call("gc").items()}
        samples = [x for s in setup.collect() for x in s["samples"]]
        return {
            **row,
            "rate": rate,
            "rate_seconds": p.rate_seconds,
            "rate_late_s": offered["late_s"],
            "lat_delivered": got_lat,
            "lat_expected": expected,
            "p50_ms": round(percentile(samples, 0.50) / 1e6, 3) if samples else None,
            "p99_ms": round(percentile(samples, 0.99) / 1e6, 3) if samples else None,
            "max_ms": round(max(samples) / 1e6, 3) if samples else None,
            "lat_cpu_us_per_push": round(lat_cpu / max(offered["sent"], 1) * 1e6, 1),
            **gc_stats,
        }
    finally:
        setup.stop()


def burst_case(system: str, transport: str, broker: str, p: Profile) -> dict[str, Any]:
    """Issue 25's figure: server CPU per delivery for a burst of ``p.big_pushes`` pushes to
    ``p.big_n`` subscribers (clients in 2+ processes: at most 20,000 files per process)."""
    n = p.big_n
    fleets = max(2, min(4, (n + 4999) // 5000))
    setup = ready_setup(system, transport, n, broker, fleets)
    try:
        row = measure_burst(setup, n, p.big_pushes, max(p.case_timeout, 120.0))
        row["scenario"] = f"{transport}_burst"
        row["fleets"] = fleets
        return row
    finally:
        setup.stop()


def idle_case(system: str, counts: tuple[int, ...], broker: str) -> list[dict[str, Any]]:
    """Server RSS growth per idle, subscribed connection, measured at each count."""
    setup = Setup(system, "amqp", broker)
    try:
        primer = setup._child("fleet")
        primer.call("connect", setup.url, setup.dialect, 1)  # lazy per-server setup happens here
        time.sleep(1.0)
        base = setup.server_rss()
        rows, total = [], 0
        for count in counts:
            total += setup.connect(count - total, fleets_for(count))
            time.sleep(2.0)
            open_now = setup.fleet_sum("open")
            rss = setup.server_rss()
            rows.append(
                {
                    "scenario": "idle",
                    "system": system,
                    "transport": "amqp",
                    "n": count,
                    "connected": open_now,
                    "rss_base_mib": round(base / 2**20, 2),
                    "rss_mib": round(rss / 2**20, 2),
                    "kib_per_conn": round((rss - base) / max(open_now, 1) / 1024, 2),
                }
            )
        return rows
    finally:
        setup.stop()


def broker_pid(broker: str) -> int:
    """The Erlang VM of the private broker whose AMQP port ``broker`` names (0: not found)."""
    port = broker.rsplit(":", 1)[-1].strip("/")
    for process in psutil.process_iter(["name", "environ"]):
        environ = process.info["environ"] or {}
        if "beam" in (process.info["name"] or "") and environ.get("RABBITMQ_NODE_PORT") == port:
            return int(process.pid)
    return 0


def sync_case(system: str, count: int, broker: str) -> dict[str, Any]:
    """Pushes/s from synchronous code, each push returning after the broker confirmed it."""
    setup = Setup(system, "amqp", broker)  # the server consumes, as in production
    try:
        # One subscriber in the room: python-socketio's server starts consuming its queue only
        # once a client connected (without one its exchange has no queue and the broker drops
        # every emit), and every system then delivers each push to someone.
        setup.connect(1, 1)
        time.sleep(1.0)
        pids = {"server": setup.server.pid, "broker": broker_pid(broker)}
        child = setup._child("sync_pusher", system=system, amqp_url=broker, pids=pids)
        result = child.call("run", count, timeout=300)
        return {"scenario": "sync_push", "system": system, "transport": "amqp", "n": 0, **result}
    finally:
        setup.stop()


def interleave(reps: int, systems: tuple[str, ...]) -> list[tuple[int, str]]:
    """(rep, system) with the order rotated each repetition."""
    out = []
    for rep in range(reps):
        k = rep % len(systems)
        out += [(rep, s) for s in systems[k:] + systems[:k]]
    return out


def run_all(
    p: Profile,
    broker: str,
    scenarios: list[str],
    systems: tuple[str, ...],
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def record(row: dict[str, Any], rep: int) -> None:
        row["rep"] = rep
        rows.append(row)
        log(" ".join(f"{k}={v}" for k, v in row.items() if k != "scenario"))

    for scenario in scenarios:
        log(f"== {scenario}")
        if scenario in ("amqp", "zmq"):
            present = tuple(s for s in systems if scenario == "amqp" or s != "sio")
            for n in p.ns:
                for rep, system in interleave(p.reps, present):
                    record(push_case(system, scenario, n, broker, p), rep)
        elif scenario in ("zmq10k", "amqp10k"):
            transport = scenario.removesuffix("10k")
            for rep, system in interleave(p.reps, p.big_systems):
                record(burst_case(system, transport, broker, p), rep)
        elif scenario == "stream":
            # Ours only: the same push case with the shared queue and with queue_mode stream.
            n = max(p.ns)
            for rep in range(p.reps):
                modes = ("amqp", "stream") if rep % 2 == 0 else ("stream", "amqp")
                for transport in modes:
                    row = push_case("ours", transport, n, broker, p)
                    row["scenario"] = "stream_push" if transport == "stream" else "shared_push"
                    record(row, rep)
        elif scenario == "recovery":
            from bench.recovery import recovery_case

            for rep in range(p.reps):
                record(recovery_case(broker, p.recovery_clients), rep)
        elif scenario == "readback":
            # The same, but another node takes over: it reads the stream back for every client.
            from bench.recovery import recovery_case

            for rep in range(p.reps):
                record(recovery_case(broker, p.recovery_clients, new_node=True), rep)
        elif scenario == "idle":
            for rep, system in interleave(p.reps, systems):
                for row in idle_case(system, p.idle_counts, broker):
                    record(row, rep)
        elif scenario == "sync":
            synced = tuple(s for s in systems if s in _SYNC_SYSTEMS)
            for rep, system in interleave(p.reps, synced):
                record(sync_case(system, p.sync_count, broker), rep)
    return rows


def median_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (scenario, system, n): the median of each number over repetitions."""
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["scenario"], row["system"], row["n"]), []).append(row)
    out = []
    for group in groups.values():
        merged = dict(group[0])
        for key, value in group[0].items():
            if isinstance(value, int | float) and key not in ("n", "rep"):
                values = [r[key] for r in group if r.get(key) is not None]
                merged[key] = statistics.median(values) if values else None
        merged["reps"] = len(group)
        merged.pop("rep", None)
        out.append(merged)
    return out
