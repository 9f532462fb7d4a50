"""Plain counters that the server, push handlers and pushers bump on their hot paths.

They are ints on ``__slots__`` objects: an increment costs no lock, no label lookup and no
formatting. ``app.metrics`` reads them when Prometheus scrapes, and the profile report reads
them every few seconds, so nothing here knows about either.
"""

from __future__ import annotations

from bisect import bisect_left

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Upper bounds (seconds) of the push-to-broadcast histogram; one more bucket holds the rest."""


class LatencyHistogram:
    """Counts per fixed bucket plus a running sum: Prometheus' histogram, without its lock."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.sum += seconds

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, float]]:
        """``(le, count)`` pairs as the text format wants them, ending with ``+Inf``."""
        pairs: list[tuple[str, float]] = []
        total = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += count
            pairs.append(("+Inf" if bound == float("inf") else repr(bound), total))
        return pairs


class ServerStats:
    """WebSocket traffic of one server."""

    __slots__ = ("frames_in", "frames_out", "cut_off", "closed")

    def __init__(self) -> None:
        self.frames_in = 0
        """Messages received from clients (each WAMP message is one WebSocket message)."""
        self.frames_out = 0
        """Frames written to clients: WELCOME, EVENTs (one per subscriber), call results."""
        self.cut_off = 0
        """Clients dropped because their unread output passed ``max_outgoing_buffer``."""
        self.closed: dict[str, int] = {}
        """Clients the server closed for what they sent, by reason (a ``server.limits`` name,
        ``invalid_json``, ``max_message_size``...; docs/security.md)."""


class PushHandlerStats:
    """What one push handler received; handled and failed come from the push events."""

    __slots__ = ("received", "deduplicated", "oversize", "reconnects", "restarts", "latency")

    def __init__(self) -> None:
        self.received = 0
        """Bodies taken from the transport (handled + failed + deduplicated + in flight)."""
        self.deduplicated = 0
        """Redeliveries dropped because their message id was already handled."""
        self.oversize = 0
        """Bodies dropped unread for being over the transport's size limit (not in received)."""
        self.reconnects = 0
        """Times the transport connection came back after being lost."""
        self.restarts = 0
        """Times the supervisor started the handler again after a failed start or a crash."""
        self.latency = LatencyHistogram()
        """Seconds from taking a body to the topic's ``on_push`` returning (the broadcast)."""


class PusherStats:
    """Pushes one pusher made."""

    __slots__ = ("sent", "failed")

    def __init__(self) -> None:
        self.sent = 0
        self.failed = 0
