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
    ("zmq_push", "deliveries_per_s", "ZeroMQ push, deliveries/s", "/s", True),
    ("zmq_push", "p50_ms", "ZeroMQ push, p50 latency", "ms", False),
    ("zmq_push", "p99_ms", "ZeroMQ push, p99 latency", "ms", False),
    ("zmq_push", "server_cpu_us_per_delivery", "ZeroMQ push, server CPU", "µs/delivery", False),
    ("idle", "kib_per_conn", "idle connection, server RSS", "KiB/conn", False),
    ("sync_push", "pushes_per_s", "sync push() with confirms", "pushes/s", True),
]

# (scenario, metric, n, other system, bound): ours/other must be >= bound (higher is better)
# or <= bound (lower is better).
TARGETS = [
    ("amqp_push", "deliveries_per_s", 1000, "sio", 5.0),
    ("amqp_push", "deliveries_per_s", 1000, "raw", 0.7),
    ("amqp_push", "p99_ms", 1, "raw", 2.0),
    ("amqp_push", "p99_ms", 100, "raw", 2.0),
    ("amqp_push", "p99_ms", 1000, "raw", 2.0),
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
            ours = table.get((scenario, "ours", n), {}).get(metric)
            sio = table.get((scenario, "sio", n), {}).get(metric)
            raw = table.get((scenario, "raw", n), {}).get(metric)
            if ours is None and sio is None and raw is None:
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
                    "ours_sio": ratio(ours, sio),
                    "ours_raw": ratio(ours, raw),
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
        "memory (↓). `n/a`: python-socketio has no asyncio ZeroMQ manager.",
        "",
        "| figure | unit | ours | python-socketio | raw limit | ours / socketio | ours / raw |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in ratios(rows):
        arrow = "↑" if r["higher_is_better"] else "↓"
        sio = "n/a" if r["scenario"] == "zmq_push" else fmt(r["sio"])
        rs = "n/a" if r["scenario"] == "zmq_push" else fmt(r["ours_sio"])
        rs += target_note(r["scenario"], r["metric"], r["n"], "sio", r["ours_sio"])
        rr = fmt(r["ours_raw"]) + target_note(
            r["scenario"], r["metric"], r["n"], "raw", r["ours_raw"]
        )
        lines.append(
            f"| {r['label']} {arrow} | {r['unit']} | {fmt(r['ours'])} | {sio} | "
            f"{fmt(r['raw'])} | {rs} | {rr} |"
        )
    lines += [
        "",
        "Offered rates for the latency figures (pushes/s): "
        + ", ".join(f"N={int(n):,}: {rate:g}" for n, rate in meta.get("rates", {}).items())
        + f", for {meta.get('rate_seconds')} s each.",
        "",
    ]
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


def chart(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    items = ratios(rows)
    labels = [f"{r['label']} {'↑' if r['higher_is_better'] else '↓'}" for r in items]
    y = list(range(len(items)))
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(items) + 1.5))
    h = 0.38
    sio = [r["ours_sio"] or 0 for r in items]
    raw = [r["ours_raw"] or 0 for r in items]
    ax.barh([i - h / 2 for i in y], sio, h, label="ours / python-socketio", color="#4c72b0")
    ax.barh([i + h / 2 for i in y], raw, h, label="ours / raw limit", color="#dd8452")
    for i, (a, b) in enumerate(zip(sio, raw, strict=True)):
        if a:
            ax.text(a, i - h / 2, f" {a:.2f}", va="center", fontsize=7)
        if b:
            ax.text(b, i + h / 2, f" {b:.2f}", va="center", fontsize=7)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("ratio ours / other (log scale; ↑ rows: >1 is better, ↓ rows: <1 is better)")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Ours vs python-socketio and the raw limit (same run, same machine)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
