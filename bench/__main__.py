"""``python -m bench``: run the benchmarks and write bench/results/.

python -m bench                 quick run (make bench)
python -m bench --full          full run (make bench-full)
python -m bench --scenarios amqp,idle --systems ours,raw
python -m bench --scenarios stream   queue_mode stream vs shared, ours at 1,000 subscribers
python -m bench report          rebuild results.md and chart.png from results.json
python -m bench profile         py-spy profile of ours and the raw limit, AMQP push to 1,000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.report import chart, markdown
from bench.runner import FULL, QUICK, SYSTEMS, median_rows, run_all

RESULTS = Path(__file__).resolve().parent / "results"
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


def cmd_run(args: argparse.Namespace) -> int:
    from tests.support.rabbitmq import RabbitMQNode

    profile = FULL if args.full else QUICK
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scenarios = args.scenarios.split(",")
    systems = tuple(s for s in SYSTEMS if s in args.systems.split(","))
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
    node = RabbitMQNode()
    node.start()
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


def cmd_profile(args: argparse.Namespace) -> int:
    from bench.profile import profile_ours

    return profile_ours(Path(args.out), args.seconds, args.n)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", nargs="?", default="run", choices=["run", "report", "profile"])
    parser.add_argument("--full", action="store_true", help="real counts and durations")
    parser.add_argument("--scenarios", default="amqp,zmq,idle,sync,stream")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--seconds", type=float, default=20.0, help="profile: sampling time")
    parser.add_argument("--n", type=int, default=1000, help="profile: subscribers")
    args = parser.parse_args(argv)
    return {"run": cmd_run, "report": cmd_report, "profile": cmd_profile}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
