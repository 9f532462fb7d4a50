"""``python -m bench deflate``: what permessage-deflate costs and saves on the broadcast path.

For typical JSON pushes it measures, in this process, the bytes of one EVENT frame plain and
compressed, and the CPU of one ``Topic.broadcast`` to N subscribers (frames queued, as ours
does before the per-turn write): plain, compressed once per broadcast (``server.compression``,
app/server/compression.py), and compressed once per subscriber (what autobahn's
``sendMessage`` does with a compressor per connection). The write syscalls are not in it: they
are one per subscriber per loop turn whatever the frame holds.
"""

from __future__ import annotations

import json
import time
import zlib
from typing import Any

from gos_web_socket.app.server.compression import DeflateFormat, deflate_frame, unframe
from gos_web_socket.app.server.topic import Topic
from gos_web_socket.app.server.wamp1 import Wamp1Format

CHANNEL = "acme/channel/bench"


def payloads() -> dict[str, Any]:
    """Typical pushes: the benchmark's small notification, an order update, a feed page."""
    return {
        "bench push (190 B)": {"t": 1733050000000000000, "seq": 1, "pad": "x" * 120},
        "order update (~600 B)": {
            "order": {"id": 91827, "status": "shipped", "total": "149.90", "currency": "EUR"},
            "customer": {"id": 4411, "name": "Ada Lovelace", "email": "ada@example.org"},
            "lines": [
                {"sku": f"SKU-{i:04d}", "name": f"Widget model {i}", "qty": i % 3 + 1}
                for i in range(6)
            ],
            "updated_at": "2026-12-01T12:00:00Z",
        },
        "feed page (~4 KB)": {
            "items": [
                {
                    "id": 1000 + i,
                    "author": f"user{i % 7}",
                    "title": f"Post number {i} about the release",
                    "body": "Short text of a post in a feed, as JSON carries it. " * 2,
                    "likes": i * 3,
                    "tags": ["news", "release", "python"],
                }
                for i in range(20)
            ]
        },
    }


class Sink:
    """A subscriber that keeps the frames queued for it (ours queues, then writes per turn)."""

    __slots__ = ("session_id", "wire_format", "frames")

    def __init__(self, session_id: str, wire_format: Any) -> None:
        self.session_id = session_id
        self.wire_format = wire_format
        self.frames: list[bytes] = []

    def write_frame(self, frame: bytes) -> bool:
        self.frames.append(frame)
        return True

    def send_event(self, topic: str, payload: Any) -> bool:
        return False


def plain_frame(payload: bytes, binary: bool = False) -> bytes:
    """What ``WampServer.frame`` builds: one unmasked text frame (up to 64 KiB here)."""
    first = 0x82 if binary else 0x81
    size = len(payload)
    head = bytes((first, size)) if size < 126 else bytes((first, 126)) + size.to_bytes(2, "big")
    return head + payload


def per_connection(frame: bytes, n: int) -> None:
    """autobahn's way: every connection compresses the message with its own compressor."""
    first, data = unframe(frame)
    for _ in range(n):
        deflate_frame(first, data, zlib.MAX_WBITS)


def timed(fn: Any, repeat: int) -> float:
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - t0) / repeat)
    return best


def run(n: int) -> str:
    wire = Wamp1Format(plain_frame)
    lines = [
        f"Topic.broadcast to {n:,} subscribers, best of 5, CPU per delivery in µs "
        "(framing and queueing only; one write syscall per subscriber per turn comes on top).",
        "",
        "| payload | plain frame B | compressed frame B | saved | plain µs/delivery "
        "| compressed once µs/delivery | compressed per client µs/delivery |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, data in payloads().items():
        frame = wire.event_frame(CHANNEL, 0, 0, data)
        packed = DeflateFormat(wire).event_frame(CHANNEL, 0, 0, data)
        results = []
        for fmt in (wire, DeflateFormat(wire)):
            topic = Topic(CHANNEL)
            sinks = [Sink(str(i), fmt) for i in range(n)]
            for sink in sinks:
                topic.add(sink)

            def once(topic: Topic = topic, sinks: list[Sink] = sinks, data: Any = data) -> None:
                topic.broadcast(data)
                for sink in sinks:
                    sink.frames.clear()

            results.append(timed(once, max(1, 20_000 // n)) / n * 1e6)
        each = timed(lambda frame=frame: per_connection(frame, n), max(1, 2_000 // n)) / n * 1e6
        lines.append(
            f"| {label} | {len(frame):,} | {len(packed):,} | "
            f"{1 - len(packed) / len(frame):.0%} | {results[0]:.3f} | {results[1]:.3f} | "
            f"{results[0] + each:.2f} |"
        )
    sample = json.dumps(payloads()["order update (~600 B)"])
    lines += ["", f"Sample payload (order update): {sample[:120]}…"]
    return "\n".join(lines)
