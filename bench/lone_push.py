"""Lone pushes to N subscribers, one at a time (issue #25): `python -m bench.lone_push`.

Each push is alone in its loop turn (the pushes are ``--interval`` seconds apart), so every
delivery is a write of its own: the case of one push to 100,000 subscribers
(bench/hundred_k.py), at a size the machine holds beside its client fleet. Per system
(``ours``: this checkout; ``main``: the package linked under ``--baseline``, run through
``PYTHONPATH``), in one run, the order rotated between repetitions:

1. start ``gos-websocket server`` with ``--workers`` and ZeroMQ on, connect ``--connections``
   subscribers from ``--fleets`` client processes (bench/hundred_k.py ``RawFleet``);
2. send ``--pushes`` pushes, waiting for each to reach everyone before the next;
3. report each push's p50/p99 (median over the pushes) and the workers' CPU per delivery
   (user, system) over the pushes; with ``--profile``, py-spy samples each worker meanwhile
   and the top functions are printed (bench/profile.py ``summarise``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from bench.agent import Child, call_all
from bench.hundred_k import (
    free_port,
    log,
    metric,
    percentile,
    spawn_server,
    wait_ready,
    worker_pids,
)
from bench.profile import summarise
from bench.wire import ROUTE, data


def cpu_split(pids: list[int]) -> tuple[float, float]:
    """User and system CPU seconds of these processes so far."""
    user = system = 0.0
    for pid in pids:
        times = psutil.Process(pid).cpu_times()
        user, system = user + times.user, system + times.system
    return user, system


async def push_all(
    zmq_port: int, count: int, interval: float, fleets: list[Child], n: int
) -> list[list[int]]:
    """``count`` pushes, each once the previous one reached all ``n``; their latencies."""
    from bench.ours import make_pusher

    pusher = make_pusher("zmq", zmq_port=zmq_port)
    pushes: list[list[int]] = []
    try:
        await asyncio.sleep(0.5)  # the ZeroMQ connection is up before the first push
        for seq in range(count):
            await pusher.push(data(seq + 1), ROUTE, {"room": "bench"})
            got: list[int] = []
            deadline = time.monotonic() + 60
            while len(got) < n and time.monotonic() < deadline:
                await asyncio.sleep(interval)
                got += [
                    x for batch in call_all(fleets, "take", [()] * len(fleets), 60) for x in batch
                ]
            pushes.append(got)
    finally:
        await pusher.close()
    return pushes


def profile_start(pids: list[int], out: Path, seconds: float) -> list[subprocess.Popen[bytes]]:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return [
        subprocess.Popen(
            [
                spy,
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(int(seconds)),
                "--rate",
                "1000",
                "--nonblocking",
                "--format",
                "raw",
                "--output",
                str(out / f"worker-{pid}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid in pids
    ]


def one_run(system: str, args: argparse.Namespace) -> dict[str, Any]:
    port, metrics, zmq = free_port(), free_port(), free_port()
    settings = {
        "SERVER__PORT": str(port),
        "SERVER__WORKERS": str(args.workers),
        "SERVER__HTTP__ENABLED": "false",
        "SERVER__METRICS__PORT": str(metrics),
        "PUSHERS__ZMQ__PORT": str(zmq),
    }
    saved = os.environ.get("PYTHONPATH")
    if system == "main":
        os.environ["PYTHONPATH"] = args.baseline
    try:
        server = spawn_server(settings, f"lone-push-{system}")
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    fleets: list[Child] = []
    result: dict[str, Any] = {"system": system}
    try:
        wait_ready(server, metrics)
        fleets = [Child("hundred_k_fleet", max_life=3600) for _ in range(args.fleets)]
        shares = [
            args.connections // args.fleets + (i < args.connections % args.fleets)
            for i in range(args.fleets)
        ]
        reports = call_all(
            fleets,
            "connect",
            [
                ("127.0.0.1", port, share, f"127.0.0.{10 + i}", 1000, 20, 60.0)
                for i, share in enumerate(shares)
            ],
            timeout=1800,
        )
        n = sum(r["connected"] for r in reports)
        deadline = time.monotonic() + 120
        while metric(metrics, "gos_websocket_subscriptions") < n and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(args.hold)
        pids = worker_pids(metrics) if args.workers > 1 else [server.pid]
        spies = (
            profile_start(pids, Path(args.profile), args.pushes * 1.0 + 30) if args.profile else []
        )
        if args.perf:
            spies += [
                subprocess.Popen(
                    ["perf", "record", "-g", "-o", f"{args.perf}/perf-{pid}.data", "-p", str(pid)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for pid in pids
            ]
        time.sleep(1.0 if spies else 0.0)
        before = cpu_split(pids)
        pushes = asyncio.run(push_all(zmq, args.pushes, args.interval, fleets, n))
        after = cpu_split(pids)
        for spy in spies:
            spy.send_signal(2)  # SIGINT: py-spy writes what it sampled so far
            spy.wait(60)
        delivered = sum(len(p) for p in pushes)
        user, system_s = after[0] - before[0], after[1] - before[1]
        result |= {
            "connections": n,
            "workers": len(pids),
            "pushes": len(pushes),
            "delivered": delivered,
            "p50_ms": round(statistics.median(percentile(p, 0.5) for p in pushes if p) / 1e6, 2),
            "p99_ms": round(statistics.median(percentile(p, 0.99) for p in pushes if p) / 1e6, 2),
            "max_ms": round(statistics.median(max(p) for p in pushes if p) / 1e6, 2),
            "cpu_us_per_delivery": round((user + system_s) / max(delivered, 1) * 1e6, 3),
            "user_us_per_delivery": round(user / max(delivered, 1) * 1e6, 3),
            "system_us_per_delivery": round(system_s / max(delivered, 1) * 1e6, 3),
        }
        log(json.dumps(result))
        return result
    finally:
        for fleet in fleets:
            fleet.stop()
        server.send_signal(15)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.lone_push",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--connections", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--fleets", type=int, default=2)
    parser.add_argument("--pushes", type=int, default=20)
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between polls")
    parser.add_argument("--hold", type=float, default=3.0, help="seconds idle before the pushes")
    parser.add_argument("--systems", default="ours", help="ours,main")
    parser.add_argument("--baseline", default="", help="PYTHONPATH holding main's gos_web_socket")
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--profile", default="", help="a directory for py-spy's samples")
    parser.add_argument("--perf", default="", help="a directory for perf's kernel samples")
    parser.add_argument("--out", default="")
    args = parser.parse_args(argv)
    for directory in (args.profile, args.perf):
        if directory:
            Path(directory).mkdir(parents=True, exist_ok=True)
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    systems = args.systems.split(",")
    results = []
    for rep in range(args.reps):
        for system in systems[rep % len(systems) :] + systems[: rep % len(systems)]:
            results.append(one_run(system, args) | {"rep": rep})
    if args.profile:
        for path in sorted(Path(args.profile).glob("worker-*.txt")):
            total, own, inclusive = summarise(path, top=25)
            print(f"\n{path.name}: {total} samples\nown:")
            for name, count in own:
                print(f"  {count / total:6.1%}  {name}")
            print("inclusive:")
            for name, count in inclusive:
                print(f"  {count / total:6.1%}  {name}")
    out = json.dumps(
        {
            "command": "python -m bench.lone_push " + " ".join(argv or sys.argv[1:]),
            "results": results,
        },
        indent=1,
    )
    if args.out:
        Path(args.out).write_text(out + "\n")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
