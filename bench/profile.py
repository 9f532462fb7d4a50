"""Profile the server side of AMQP push to N subscribers with py-spy (ours and the raw limits).

The pusher floods the queue so the server is busy for the whole sampling window; py-spy samples
the server process without pausing it. Output in bench/results/: the collapsed stacks
(``profile-<system>-amqp-<n>.txt``, loadable in speedscope) and ``profile.md``, the top
functions by self and by inclusive time.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench.runner import Setup, fleets_for

# Frames every sample passes through (process start-up, the event loop itself): not informative.
BOILERPLATE = (
    "multiprocessing/",
    "asyncio/runners",
    "asyncio/base_events",
    "asyncio/events",
    "<string>",
    "bench/agent.py",
)
ROOT = f"{Path(__file__).resolve().parents[1]}/"
FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:]*)(?::\d+)?\)$")


def short(frame: str) -> str:
    """``func (path/to/file.py:12)`` -> ``file.py:func``."""
    m = FRAME.match(frame)
    if not m:
        return frame
    path = m["file"]
    for marker in ("site-packages/", "lib/python3.11/", ROOT):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{path}:{m['func']}"


def summarise(
    collapsed: Path, top: int = 15
) -> tuple[int, list[tuple[str, int]], list[tuple[str, int]]]:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = [short(f) for f in stack.split(";")]
        total += n
        own[frames[-1]] += n
        for f in set(frames):
            if not f.startswith(BOILERPLATE):
                inclusive[f] += n
    return total, own.most_common(top), inclusive.most_common(top)


def profile_one(
    system: str, broker: str, out: Path, seconds: float, n: int, transport: str = "amqp"
) -> tuple[Path, str]:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    setup = Setup(system, transport, broker)
    try:
        setup.connect(n, fleets_for(n))
        pusher = setup.start_pusher()
        setup.warm_up(n)
        path = out / f"profile-{system}-{transport}-{n}.txt"
        record = subprocess.Popen(
            [
                spy,
                "record",
                "--pid",
                str(setup.server_pid),  # the CLI itself, not the bench agent above it
                "--duration",
                str(int(seconds)),
                "--rate",
                "200",
                "--nonblocking",
                "--format",
                "raw",
                "--output",
                str(path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        cpu0 = sum(setup.server_cpu())
        t0 = time.monotonic()
        pusher.call("burst", int(seconds * 200), 100, timeout=seconds + 120)
        record.wait(timeout=seconds + 60)
        got = setup.fleet_sum("count")
        cpu = sum(setup.server_cpu()) - cpu0
        wall = time.monotonic() - t0
        note = (
            f"{got:,} deliveries in {wall:.1f} s ({got / wall:,.0f}/s), server CPU {cpu:.1f} s "
            f"({cpu / max(got, 1) * 1e6:.2f} µs per delivery)"
        )
        print(f"{system}: {note}", flush=True)
        return path, note
    finally:
        setup.stop()


def profile_ours(
    out: Path,
    seconds: float,
    n: int,
    systems: tuple[str, ...] = ("ours", "picows", "raw"),
    transports: tuple[str, ...] = ("amqp",),
) -> int:
    """Profile each system on each transport (``stream``: ours in ``queue_mode: stream``)."""
    from bench.__main__ import start_broker

    out.mkdir(parents=True, exist_ok=True)
    node = start_broker(print)
    lines = [
        f"# py-spy profile: {', '.join(transports)} push to {n:,} subscribers, server process",
        "",
        f"{seconds:.0f} s at 200 Hz, non-blocking, while the queue is flooded; load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} at the start.",
        "",
    ]
    try:
        for system, transport in [(s, t) for t in transports for s in systems]:
            path, note = profile_one(system, node.url, out, seconds, n, transport)
            total, own, inclusive = summarise(path)
            lines += [
                f"## {system}, {transport} ({total:,} samples, `{path.name}`)",
                "",
                note + ".",
                "",
                "| self % | function | | inclusive % | function |",
                "|---:|---|---|---:|---|",
            ]
            for (f1, c1), (f2, c2) in zip(own, inclusive, strict=False):
                lines.append(
                    f"| {100 * c1 / total:.1f} | `{f1}` | | {100 * c2 / total:.1f} | `{f2}` |"
                )
            lines.append("")
    finally:
        node.stop()
    (out / "profile.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0
