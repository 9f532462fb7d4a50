"""One capped exponential backoff for every retry loop (pushers, push handlers, workers).

Each caller keeps its own numbers (first delay, factor, cap, jitter); this only computes the
sequence, so the rules cannot drift apart again.
"""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["Backoff"]


class Backoff:
    """Delays ``first``, ``first * factor``, ... capped at ``cap``; ``reset()`` starts again.

    The first delay is ``first`` even when ``cap`` is smaller (the callers always did so).

    ``jitter`` (0 to 1) takes up to that fraction off each delay, drawn at random, so that
    many clients retrying together spread out; 0 (every caller today) gives exact delays.
    """

    def __init__(
        self,
        first: float,
        cap: float,
        factor: float = 2.0,
        jitter: float = 0.0,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if first <= 0 or cap <= 0 or factor < 1 or not 0 <= jitter <= 1:
            raise ValueError("backoff needs first > 0, cap > 0, factor >= 1, 0 <= jitter <= 1")
        self.first = first
        self.cap = cap
        self.factor = factor
        self.jitter = jitter
        self.rng = rng
        self.current = first
        """The delay the next ``next()`` returns (before jitter)."""

    def next(self) -> float:
        """The delay to wait now; the one after it grows by ``factor`` up to ``cap``."""
        delay = self.current
        self.current = min(delay * self.factor, self.cap)
        if self.jitter:
            delay *= 1 - self.jitter * self.rng()
        return delay

    def reset(self) -> None:
        """Start again from ``first`` (the thing retried worked for a while)."""
        self.current = self.first
