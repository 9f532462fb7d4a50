"""Turn result rows into ``results.md`` (table with ratios and targets) and ``chart.png``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# (scenario, metric, label, unit, higher_is_better)
FIGURES = [
    ("amqp_push", "deliveries_per_s", "AMQP push, deliveries/s", "/s", True),
    ("amqp_push", "p50_ms", "AMQP push, p50 latency", "ms", False),
    ("amqp_push", "p99_ms", "AMQP push, p99 latency", "ms", False),
    ("amqp_push", "server_cpu_us_per_delivery", "AMQP push, server CPU", "µs/delivery", False),
    (
        "amqp_push",
        "lat_cpu_us_per_push",
        "AMQP push, server CPU at the offered rate",
        "µs/push",
        False,
    ),
    ("zmq_push", "deliveries_per_s", "ZeroMQ push, deliveries/s", "/s", True),
    ("zmq_push", "p50_ms", "ZeroMQ push, p50 latency", "ms", False),
    ("zmq_push", "p99_ms", "ZeroMQ push, p99 latency", "ms", False),
    ("zmq_push", "server_cpu_us_per_delivery", "ZeroMQ push, server CPU", "µs/delivery", False),
    ("idle", "kib_per_conn", "idle connection, server RSS", "KiB/conn", False),
    ("sync_push", "pushes_per_s", "sync push() with confirms", "pushes/s", True),
]

LIMITS = ("picows", "websockets")
"""The coalescing raw limits (bench/rawlimit.py); ``limit`` is the better of them per figure."""

# (scenario, metric, n, other system, bound): ours/other must be >= bound (higher is better)
# or <= bound (lower is better). ``limit``: the better coalescing raw limit (issue 18); ``raw``:
# the old one-write-per-push autobahn limit (issue 11's targets).
TARGETS = [
    ("amqp_push", "deliveries_per_s", 1000, "sio", 5.0),
    ("amqp_push", "deliveries_per_s", 1000, "raw", 0.7),
    ("amqp_push", "deliveries_per_s", 1000, "limit", 0.8),
    ("amqp_push", "p99_ms", 1, "raw", 2.0),
    ("amqp_push", "p99_ms", 100, "raw", 2.0),
    ("amqp_push", "p99_ms", 1000, "raw", 2.0),
    ("amqp_push", "p99_ms", 100, "limit", 1.5),
    ("idle", "kib_per_conn", 1000, "sio", 0.5),
    ("idle", "kib_per_conn", 5000, "sio", 0.5),
    ("idle", "kib_per_conn", 1000, "raw", 1.3),
    ("idle", "kib_per_conn", 5000, "raw", 1.3),
]


def lookup(rows: list[dict[str, Any]]) -> dict[tuple[str, str, int], dict[str, Any]]:
    return {(r["scenario"], r["system"], r["n"]): r for r in rows}


def fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and value >= 100:
        return f"{value:,.0f}"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def ratio(a: Any, b: Any) -> float | None:
    if a is None or b is None or not b:
        return None
    return float(a) / float(b)


def target_note(scenario: str, metric: str, n: int, other: str, r: float | None) -> str:
    for t_scenario, t_metric, t_n, t_other, bound in TARGETS:
        if (t_scenario, t_metric, t_n, t_other) == (scenario, metric, n, other):
            higher = metric in ("deliveries_per_s", "pushes_per_s")
            op = "≥" if higher else "≤"
            if r is None:
                return f" (target {op} {bound}: not measured)"
            ok = r >= bound if higher else r <= bound
            return f" ({'✅' if ok else '❌'} target {op} {bound})"
    return ""


def ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every figure with its ours/sio and ours/raw ratio."""
    table = lookup(rows)
    ns = sorted({r["n"] for r in rows})
    out = []
    for scenario, metric, label, unit, higher in FIGURES:
        for n in ns:
            value = {s: table.get((scenario, s, n), {}).get(metric) for s in ("ours", "sio", "raw")}
            limits = {s: table.get((scenario, s, n), {}).get(metric) for s in LIMITS}
            measured = [(v, s) for s, v in limits.items() if v is not None]
            best = (max if higher else min)(measured) if measured else (None, None)
            ours, sio, raw = value["ours"], value["sio"], value["raw"]
            if all(v is None for v in (*value.values(), *limits.values())):
                continue
            out.append(
                {
                    "scenario": scenario,
                    "metric": metric,
                    "label": label if scenario == "sync_push" else f"{label}, N={n:,}",
                    "unit": unit,
                    "higher_is_better": higher,
                    "n": n,
                    "ours": ours,
                    "sio": sio,
                    "raw": raw,
                    **limits,
                    "limit": best[0],
                    "limit_system": best[1],
                    "ours_sio": ratio(ours, sio),
                    "ours_raw": ratio(ours, raw),
                    "ours_limit": ratio(ours, best[0]),
                }
            )
    return out


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"Mode `{meta.get('profile')}`, {meta.get('reps')} repetition(s) (medians), "
        f"{meta.get('started')}; {meta.get('machine')}; load average "
        f"{meta.get('load_before')} before, {meta.get('load_after')} after.",
        "",
        "Ratios are ours / other. Higher is better for rates (↑), lower for latency and "
        "memory (↓). `n/a`: python-socketio has no asyncio ZeroMQ manager. `raw`: bare "
        "autobahn, one write per subscriber per push; `picows`, `websockets`: the coalescing "
        "raw limits (one write per subscriber per loop turn, bench/rawlimit.py); `limit`: the "
        "better of those two for that figure.",
        "",
        "| figure | unit | ours | python-socketio | raw (autobahn) | picows | websockets "
        "| ours / socketio | ours / raw | ours / limit |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in ratios(rows):
        arrow = "↑" if r["higher_is_better"] else "↓"
        sio = "n/a" if r["scenario"] == "zmq_push" else fmt(r["sio"])
        rs = "n/a" if r["scenario"] == "zmq_push" else fmt(r["ours_sio"])
        rs += target_note(r["scenario"], r["metric"], r["n"], "sio", r["ours_sio"])
        rr = fmt(r["ours_raw"]) + target_note(
            r["scenario"], r["metric"], r["n"], "raw", r["ours_raw"]
        )
        rl = fmt(r["ours_limit"]) + target_note(
            r["scenario"], r["metric"], r["n"], "limit", r["ours_limit"]
        )
        if r["limit_system"]:
            rl += f" ({r['limit_system']})"
        lines.append(
            f"| {r['label']} {arrow} | {r['unit']} | {fmt(r['ours'])} | {sio} | "
            f"{fmt(r['raw'])} | {fmt(r['picows'])} | {fmt(r['websockets'])} | {rs} | {rr} | {rl} |"
        )
    lines += [
        "",
        "Offered rates for the latency figures (pushes/s): "
        + ", ".join(f"N={int(n):,}: {rate:g}" for n, rate in meta.get("rates", {}).items())
        + f", for {meta.get('rate_seconds')} s each.",
        "",
    ]
    lines += burst_table(rows)
    lines += sync_background_notes(rows)
    lines += uvloop_notes(rows)
    lines += workers_notes(rows)
    for r in rows:
        if r["scenario"] == "sync_push" and r.get("transient_pushes_per_s"):
            lines.append(
                f"- sync push: the raw client (pika) on a transient queue, as python-socketio's "
                f"queues are, did {r['transient_pushes_per_s']:,.0f} pushes/s; on the durable "
                f"queue ours uses, {r['pushes_per_s']:,.0f}."
            )
    shared = {r["n"]: r for r in rows if r["scenario"] == "shared_push"}
    for r in rows:
        if r["scenario"] == "stream_push" and r["n"] in shared:
            base = shared[r["n"]]
            ratio = r["deliveries_per_s"] / base["deliveries_per_s"]
            lines.append(
                f"- queue_mode stream vs shared, AMQP push to {r['n']:,} subscribers (ours): "
                f"{r['deliveries_per_s']:,.0f} vs {base['deliveries_per_s']:,.0f} deliveries/s, "
                f"ratio {ratio:.2f} (target >= 0.8{'' if ratio >= 0.8 else ': missed'}); p99 "
                f"{r['p99_ms']} vs {base['p99_ms']} ms."
            )
    lost = [r for r in rows if r.get("expected") and r.get("delivered", 0) < r["expected"]]
    for r in lost:
        lines.append(
            f"- {r['system']} {r['scenario']} N={r['n']}: {r['delivered']:,} of "
            f"{r['expected']:,} frames arrived before the case's time bound."
        )
    return "\n".join(lines) + "\n"


def burst_table(rows: list[dict[str, Any]]) -> list[str]:
    """The ``zmq10k``/``amqp10k`` bursts (issue 25): server CPU per delivery, summed over the
    server's processes, beside the picows limit of the same transport (target: at most 1.5x)."""
    bursts = [r for r in rows if r["scenario"].endswith("_burst")]
    if not bursts:
        return []
    limits = {(r["transport"], r["n"]): r for r in bursts if r["system"] == "picows"}
    lines = [
        "Burst to many subscribers: server CPU µs per delivery (user + system, summed over "
        "the server's processes; the CLI's, not the bench agent's), ratio to picows:",
        "",
        "| transport | N | system | processes | deliveries/s | CPU µs | user | system "
        "| / picows | parent µs/push | busiest worker µs/delivery |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in bursts:
        limit = limits.get((r["transport"], r["n"]))
        share = ratio(
            r["server_cpu_us_per_delivery"], limit and limit["server_cpu_us_per_delivery"]
        )
        lines.append(
            f"| {r['transport']} | {r['n']:,} | {r['system']} | {r['server_processes']} "
            f"| {r['deliveries_per_s']:,.0f} | {r['server_cpu_us_per_delivery']:.3f} "
            f"| {r['server_user_us_per_delivery']:.3f} | {r['server_sys_us_per_delivery']:.3f} "
            f"| {fmt(share)} | {fmt(r.get('parent_cpu_us_per_push'))} "
            f"| {fmt(r.get('busiest_worker_us_per_delivery'))} |"
        )
    return [*lines, ""]


def uvloop_notes(rows: list[dict[str, Any]]) -> list[str]:
    """``ours-uvloop`` (the same server on uvloop) against ``ours`` (asyncio), figure by figure."""
    table = lookup(rows)
    notes = []
    for scenario, metric, label, unit, _higher in FIGURES:
        for n in sorted({r["n"] for r in rows}):
            ours = table.get((scenario, "ours", n), {}).get(metric)
            uvloop = table.get((scenario, "ours-uvloop", n), {}).get(metric)
            if ours is not None and uvloop is not None:
                notes.append(
                    f"- uvloop / asyncio, {label}, N={n:,}: {fmt(uvloop)} / {fmt(ours)} {unit} "
                    f"= {fmt(ratio(uvloop, ours))}"
                )
    return notes


WORKER_SYSTEMS = {"ours-w1": "1", "ours-w2": "2", "ours-wauto": "auto"}
"""The CLI variants (bench/runner.py SYSTEM_TABLE) and their ``server.workers``."""


def workers_notes(rows: list[dict[str, Any]]) -> list[str]:
    """The CLI server with ``server.workers`` 1 / 2 / auto against in-process ours, python-socketio
    and picows, figure by figure (the table's ``ours`` column is the in-process server)."""
    table = lookup(rows)
    notes = []
    for system, workers in WORKER_SYSTEMS.items():
        for scenario, metric, label, unit, _higher in FIGURES:
            for n in sorted({r["n"] for r in rows}):
                value = table.get((scenario, system, n), {}).get(metric)
                if value is None:
                    continue
                parts = [f"- workers: {workers} ({system}), {label}, N={n:,}: {fmt(value)} {unit}"]
                for other, name in (("ours", "ours"), ("sio", "socketio"), ("picows", "picows")):
                    base = table.get((scenario, other, n), {}).get(metric)
                    if base is not None:
                        parts.append(f"{fmt(ratio(value, base))}x {name}")
                notes.append(", ".join(parts))
    return notes


def sync_background_notes(rows: list[dict[str, Any]]) -> list[str]:
    """Ours in confirm_mode background against waiting and python-socketio's emit."""
    table = lookup(rows)
    ours, sio = table.get(("sync_push", "ours", 0)), table.get(("sync_push", "sio", 0))
    if ours is None or not ours.get("background_pushes_per_s"):
        return []
    background = ours["background_pushes_per_s"]
    parts = [
        f"- sync push in `confirm_mode: background` (every confirm in, `flush_sync()` "
        f"included): {background:,.0f} pushes/s, {fmt(ratio(background, ours['pushes_per_s']))}x "
        f"waiting for each ({ours['pushes_per_s']:,.0f}/s); the calls alone "
        f"{ours['background_calls_per_s']:,.0f}/s; pusher CPU "
        f"{fmt(ours.get('background_cpu_us_per_push'))} µs/push; with transient messages "
        f"(no disk write before the confirm) {fmt(ours.get('background_transient_pushes_per_s'))}/s"
    ]
    if sio is not None:
        parts.append(
            f"; {fmt(ratio(background, sio['pushes_per_s']))}x python-socketio's emit with "
            f"confirms ({sio['pushes_per_s']:,.0f}/s, {fmt(sio.get('cpu_us_per_push'))} µs/push)"
        )
        if sio.get("no_confirm_pushes_per_s"):
            parts.append(
                f", {fmt(ratio(background, sio['no_confirm_pushes_per_s']))}x its emit "
                f"without confirms, which waits for nothing "
                f"({sio['no_confirm_pushes_per_s']:,.0f}/s)"
            )
    return ["".join(parts) + "."]


def chart(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    items = ratios(rows)
    labels = [f"{r['label']} {'↑' if r['higher_is_better'] else '↓'}" for r in items]
    y = list(range(len(items)))
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(items) + 1.5))
    h = 0.27
    series = [
        ("ours_sio", "ours / python-socketio", "#4c72b0"),
        ("ours_raw", "ours / raw (autobahn, write per push)", "#dd8452"),
        ("ours_limit", "ours / coalescing raw limit (best of picows, websockets)", "#55a868"),
    ]
    for k, (key, label, color) in enumerate(series):
        values = [r[key] or 0 for r in items]
        offset = (k - 1) * h
        ax.barh([i + offset for i in y], values, h, label=label, color=color)
        for i, v in enumerate(values):
            if v:
                ax.text(v, i + offset, f" {v:.2f}", va="center", fontsize=6)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("ratio ours / other (log scale; ↑ rows: >1 is better, ↓ rows: <1 is better)")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Ours vs python-socketio and the raw limits (same run, same machine)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
