"""One connection's inbound budgets (docs/security.md): per second, and per event-loop turn.

Per second, a token bucket each (app/limits.py): messages, answered dealer calls, pings, and
frames (every frame counts: a message's fragments and control frames too, so a message of
60,000 one-byte fragments is a flood although it is one message). A spent one raises
``LimitExceeded`` and the connection closes with its code (1008). Per loop turn: at most
``frames_per_turn`` frames and ``read_bytes_per_turn`` bytes are parsed for one client before
the rest waits for the next turn (``turn_spent``), so no client holds the loop for longer than
that costs. The caller passes the clock and the buffered length, so a test needs no sleeping
and no socket.
"""

from __future__ import annotations

from gos_web_socket.app.exceptions import LimitExceeded
from gos_web_socket.app.limits import TokenBucket
from gos_web_socket.settings.models import LimitsSettings


class InboundBudgets:
    """What one client may send per second (``messages_per_second``, ``pings_per_second``: a
    ping flood is a write amplifier, ``frames_per_second``) and what of it is parsed per turn."""

    __slots__ = (
        "_messages",
        "_calls",
        "_pings",
        "_frames",
        "_frames_per_turn",
        "_bytes_per_turn",
        "_turn_frames",
        "_turn_mark",
    )

    def __init__(self, limits: LimitsSettings) -> None:
        self._messages = TokenBucket(limits.messages_per_second, limits.messages_burst)
        self._calls = TokenBucket(limits.calls_per_second, limits.calls_burst)
        self._pings = TokenBucket(limits.pings_per_second, limits.pings_burst)
        self._frames = TokenBucket(limits.frames_per_second, limits.frames_burst)
        self._frames_per_turn = limits.frames_per_turn
        self._bytes_per_turn = limits.read_bytes_per_turn
        self._turn_frames = 0
        self._turn_mark = 0

    def message(self, now: float) -> None:
        """Count one inbound message at ``now`` (seconds).

        Raises:
            LimitExceeded: ``messages_per_second`` is spent.
        """
        _spend(self._messages, now, "messages_per_second", "messages")

    def answered(self, now: float) -> None:
        """A message of this client was a call answered through the dealer at ``now``: it
        spends a token of ``calls_per_second`` instead of its message and frame tokens.
        Dealer round trips run faster than a page's messages, but not for free (a client
        calling its own procedure would flood unpaced otherwise).

        Raises:
            LimitExceeded: ``calls_per_second`` is spent.
        """
        self._messages.give_back()
        self._frames.give_back()
        _spend(self._calls, now, "calls_per_second", "answered calls")

    def ping(self, now: float) -> None:
        """Count one inbound ping at ``now`` (seconds).

        Raises:
            LimitExceeded: ``pings_per_second`` is spent.
        """
        _spend(self._pings, now, "pings_per_second", "pings")

    def frame(self, now: float) -> None:
        """Count one inbound frame (a fragment, a control frame) at ``now`` (seconds).

        Raises:
            LimitExceeded: ``frames_per_second`` is spent.
        """
        self._turn_frames += 1
        _spend(self._frames, now, "frames_per_second", "frames")

    def turn(self, buffered: int) -> None:
        """A loop turn's parsing starts with ``buffered`` bytes read and not yet parsed."""
        self._turn_frames = 0
        self._turn_mark = buffered

    def turn_spent(self, buffered: int) -> bool:
        """True when this turn parsed ``frames_per_turn`` frames or ``read_bytes_per_turn``
        bytes (``buffered``: bytes left): the rest waits for the next turn."""
        return (
            self._turn_frames >= self._frames_per_turn
            or self._turn_mark - buffered >= self._bytes_per_turn
        )


def _spend(bucket: TokenBucket, now: float, setting: str, unit: str) -> None:
    """Take a token from ``bucket`` or raise ``LimitExceeded`` naming ``setting``."""
    if not bucket.take(now):
        raise LimitExceeded(setting, f"more than {bucket.rate:g} {unit}/s")
