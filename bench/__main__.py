"""``python -m bench``: run the benchmarks and write bench/results/.

python -m bench                 quick run (make bench)
python -m bench --full          full run (make bench-full)
python -m bench --scenarios amqp,idle --systems ours,raw
python -m bench --scenarios amqp --systems ours,picows,websockets --ns 100 --reps 3
python -m bench --scenarios stream   queue_mode stream vs shared, ours at 1,000 subscribers
python -m bench --scenarios recovery   5,000 clients recover after a server restart
python -m bench --scenarios readback   the same, another node takes over: reads the stream back
python -m bench --scenarios zmq10k,amqp10k   burst to 10,000: server CPU per delivery (issue 25;
                                in --full; systems ours-w1,ours,picows unless --systems names them)
python -m bench report          rebuild results.md and chart.png from results.json
python -m bench profile         py-spy profile of ours and the raw limit, AMQP push to 1,000
python -m bench profile --systems ours --transports amqp,stream   shared queue vs stream mode
python -m bench deflate         permessage-deflate: frame bytes and broadcast CPU per delivery
python -m bench wamp2 [--calls 5000 --subscribers 1000]   WAMP v2: ours vs Crossbar, calls
                                and publish fan-out (bench/wamp2.py; make crossbar-venv first)
python -m bench heap --systems ours,ours-nofreeze,picows   GC: tracked objects, full-collection time
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import replace
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.report import chart, markdown
from bench.runner import FULL, QUICK, SYSTEM_TABLE, SYSTEMS, median_rows, run_all

RESULTS = Path(__file__).resolve().parent / "results"
QUICK_SCENARIOS = "amqp,zmq,idle,sync,stream"
FULL_SCENARIOS = f"{QUICK_SCENARIOS},zmq10k,amqp10k"
PACKAGES = (
    "autobahn",
    "aio-pika",
    "pyzmq",
    "python-socketio",
    "python-engineio",
    "aiohttp",
    "picows",
    "pika",
    "kombu",
)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, {platform.system()} "
        f"{platform.release()}, CPython {platform.python_version()}"
    )


def versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "missing"
    return out


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def write_reports(out: Path, rows: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    (out / "results.md").write_text(markdown(rows, meta))
    chart(rows, out / "chart.png")


def start_broker(log: Any, tries: int = 5) -> Any:
    """A private RabbitMQ; a few tries, as one of its ports may be taken by another process's
    sockets on a busy machine (main's RabbitMQNode now picks its Erlang ports below the
    ephemeral range, which makes that rare)."""
    from tests.support.rabbitmq import BrokerSetupError, RabbitMQNode

    for attempt in range(1, tries + 1):
        node = RabbitMQNode()
        try:
            node.start()
            return node
        except BrokerSetupError as exc:
            node.stop()
            if attempt == tries:
                raise
            log(f"broker did not start ({exc}); trying another port")
    raise AssertionError("unreachable")


def cmd_run(args: argparse.Namespace) -> int:

    profile = FULL if args.full else QUICK
    if args.ns:
        profile = replace(profile, ns=tuple(int(n) for n in args.ns.split(",")))
    if args.reps:
        profile = replace(profile, reps=args.reps)
    if args.rate_seconds:
        profile = replace(profile, rate_seconds=args.rate_seconds)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scenarios = (args.scenarios or (FULL_SCENARIOS if args.full else QUICK_SCENARIOS)).split(",")
    systems = tuple(args.systems.split(","))
    if args.systems != ",".join(SYSTEMS):  # named: the 10,000-subscriber burst runs them too
        profile = replace(profile, big_systems=systems)
    unknown = [s for s in systems if s not in SYSTEM_TABLE]
    if unknown:
        raise SystemExit(
            f"--systems: unknown {', '.join(unknown)}; known: {', '.join(SYSTEM_TABLE)}"
        )
    meta: dict[str, Any] = {
        "profile": profile.name,
        "reps": profile.reps,
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": machine(),
        "versions": versions(),
        "load_before": load(),
        "rates": {str(n): r for n, r in profile.rates.items()},
        "rate_seconds": profile.rate_seconds,
        "scenarios": scenarios,
        "systems": list(systems),
    }

    def log(text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    log(f"{meta['machine']}; load {meta['load_before']}; starting a private RabbitMQ")
    node = start_broker(log)
    t0 = time.monotonic()
    try:
        rows = run_all(profile, node.url, scenarios, systems, log)
    finally:
        node.stop()
    meta["load_after"] = load()
    meta["seconds"] = round(time.monotonic() - t0, 1)
    merged = median_rows(rows)
    (out / f"raw-{profile.name}.json").write_text(
        json.dumps({"meta": meta, "rows": rows}, indent=1)
    )
    (out / "results.json").write_text(json.dumps({"meta": meta, "rows": merged}, indent=1))
    write_reports(out, merged, meta)
    log(f"done in {meta['seconds']} s; see {out / 'results.md'}")
    print((out / "results.md").read_text())
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    out = Path(args.out)
    data = json.loads((out / "results.json").read_text())
    write_reports(out, data["rows"], data["meta"])
    print((out / "results.md").read_text())
    return 0


def cmd_heap(args: argparse.Namespace) -> int:
    """Tracked objects and one full collection's time in each server: after start-up, then
    with N idle subscribers (ZeroMQ push handler: no broker needed)."""
    from bench.agent import Child, call_all
    from bench.runner import SYSTEM_TABLE, fleets_for, free_port, split, ws_url

    for system in args.systems.split(","):
        spec = SYSTEM_TABLE[system]
        if spec.dialect != "wamp":
            continue
        kwargs: dict[str, Any] = {"transport": "zmq", "zmq_port": free_port()}
        if spec.server == "ours_server":
            kwargs["gc_freeze"] = spec.gc_freeze
        with Child(spec.server, **kwargs) as server:
            port = server.call("start", timeout=60)
            started = server.call("heap")
            fleets = [Child("fleet") for _ in range(fleets_for(args.n))]
            try:
                urls = [(ws_url("wamp", port), "wamp", k) for k in split(args.n, len(fleets))]
                call_all(fleets, "connect", urls, timeout=180)
                time.sleep(2.0)
                server.call("heap")  # the first collection also frees the handshakes' garbage
                loaded = server.call("heap")
            finally:
                for fleet in fleets:
                    fleet.stop()
        print(
            f"{system}: start-up {started['objects']:,} tracked objects "
            f"({started['frozen']:,} frozen), full collection {started['full_ms']} ms; with "
            f"{args.n:,} subscribers {loaded['objects']:,} tracked "
            f"({(loaded['objects'] - started['objects']) / args.n:.1f} per connection), "
            f"full collection {loaded['full_ms']} ms"
        )
    return 0


def cmd_deflate(args: argparse.Namespace) -> int:
    from bench.deflate import run

    for n in (100, 1000):
        print(run(n), end="\n\n")
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    from bench.profile import profile_ours

    given = args.systems != ",".join(SYSTEMS)  # profile's default: ours and two raw limits
    systems = tuple(args.systems.split(",")) if given else ("ours", "picows", "raw")
    return profile_ours(
        Path(args.out), args.seconds, args.n, systems, tuple(args.transports.split(","))
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["wamp2"]:  # its own options (bench/wamp2.py)
        from bench.wamp2 import main as wamp2

        return wamp2(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "command", nargs="?", default="run", choices=["run", "report", "profile", "heap", "deflate"]
    )
    parser.add_argument("--full", action="store_true", help="real counts and durations")
    parser.add_argument(
        "--scenarios", default="", help=f"default {QUICK_SCENARIOS}; with --full {FULL_SCENARIOS}"
    )
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--ns", default="", help="subscriber counts, e.g. 100,1000 (default: all)")
    parser.add_argument("--reps", type=int, default=0, help="repetitions (default: the mode's)")
    parser.add_argument(
        "--rate-seconds", type=float, default=0.0, help="latency window (default: the mode's)"
    )
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--seconds", type=float, default=20.0, help="profile: sampling time")
    parser.add_argument("--n", type=int, default=1000, help="profile: subscribers")
    parser.add_argument(
        "--transports", default="amqp", help="profile: amqp and/or stream (queue_mode stream)"
    )
    args = parser.parse_args(argv)
    commands = {
        "run": cmd_run,
        "report": cmd_report,
        "profile": cmd_profile,
        "heap": cmd_heap,
        "deflate": cmd_deflate,
    }
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
