"""What every system pushes and how a received frame is read: one payload shape for all.

The push data is ``{"t": <send time, CLOCK_MONOTONIC ns>, "seq": n, "pad": "..."}``; ``t`` comes
first so a client finds it without parsing JSON. ``t == 0`` marks a warm-up push that proves a
subscription works and is never counted. CLOCK_MONOTONIC is one clock for every process on the
machine, so a client subtracts the pusher's stamp from its own receive time.
"""

from __future__ import annotations

import json
import time

ROOM = "bench"
CHANNEL = f"acme/channel/{ROOM}"  # the demo route acme_topic with room=bench
ROUTE = "acme_topic"
PAD = "x" * 120  # a frame of about 190 bytes, a typical small notification

_T = b'"t":'


def data(seq: int, warmup: bool = False) -> dict[str, object]:
    """The push data; stamped now unless it is a warm-up."""
    return {"t": 0 if warmup else time.monotonic_ns(), "seq": seq, "pad": PAD}


def envelope(seq: int, warmup: bool = False) -> bytes:
    """The GOS envelope body for the raw transports (what our pushers put on the wire)."""
    return json.dumps({"topic": CHANNEL, "data": data(seq, warmup)}, separators=(",", ":")).encode()


def stamp(payload: bytes) -> int:
    """The ``t`` of an event frame, 0 for a warm-up, -1 for anything that is not a push."""
    i = payload.find(_T)
    if i < 0:
        return -1
    j = payload.find(b",", i)
    return int(payload[i + 4 : j])
