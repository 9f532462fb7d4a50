"""The attack run as a script, for the issue note: ``python -m tests.hostile.report``.

Prints one row per attack kind (the figures the tests assert), the run's totals and the
100 MB ZeroMQ frame's cost. Options:
``--only KIND[,KIND]`` runs those kinds alone; ``--json`` prints the raw figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import asdict

from tests.hostile.harness import PLAN, MiB, Run, run, zmq_frame_growth


def table(result: Run) -> str:
    rows = [
        f"{'attack':<20}{'n':>4}{'lost':>6}{'p50 ms':>9}{'p99 ms':>9}{'rpc max':>9}"
        f"{'RSS MiB before/peak/after':>28}{'tb':>4}{'s':>6}  answers"
    ]
    for p in result.phases:
        memory = f"{p.rss_before / MiB:.0f}/{p.rss_peak / MiB:.0f}/{p.rss_after / MiB:.0f}"
        answers = ", ".join(f"{a}: {n}" for a, n in sorted(p.answers().items()))
        rows.append(
            f"{p.name:<20}{p.attackers:>4}{p.lost:>6}{p.p50_ms:>9.1f}{p.p99_ms:>9.1f}"
            f"{p.rpc_worst_ms:>9.0f}{memory:>28}{p.tracebacks:>4}{p.seconds:>6.1f}  {answers}"
        )
    rows.append(
        f"run: {result.seconds} s; RSS start {result.rss_start / MiB:.0f} MiB, peak "
        f"{result.rss_peak / MiB:.0f} MiB, end {result.rss_end / MiB:.0f} MiB; sessions left "
        f"{result.sessions_after}; tracebacks {result.tracebacks}; good subscribers closed: "
        f"{len(result.subscribers_closed)}"
    )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated attack kinds")
    parser.add_argument("--json", action="store_true", help="raw figures as JSON")
    args = parser.parse_args()
    kinds = set(filter(None, args.only.split(",")))
    plan = [(kind, n) for kind, n in PLAN if not kinds or kind in kinds]
    result = asyncio.run(run(plan, None if not kinds else {}))
    growth, delivered = asyncio.run(zmq_frame_growth(100)) if not kinds else (0.0, True)
    if args.json:
        figures = asdict(result) | {"zmq_100mb_growth_mib": growth, "zmq_push_after": delivered}
        print(json.dumps(figures, default=str))
        return
    print(table(result))
    if not kinds:
        after = "arrived" if delivered else "was LOST"
        print(f"zmq: one 100 MB frame grew peak RSS by {growth:.0f} MiB; a push after it {after}")


if __name__ == "__main__":
    main()
