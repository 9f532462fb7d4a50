"""One connection's inbound rate budgets: messages and pings per second (docs/security.md).

A token bucket each (app/limits.py); the caller passes the clock, so a test needs no sleeping.
A spent budget raises ``LimitExceeded`` and the connection closes with its code (1008).
"""

from __future__ import annotations

from gos_web_socket.app.exceptions import LimitExceeded
from gos_web_socket.app.limits import TokenBucket
from gos_web_socket.settings.models import LimitsSettings


class InboundBudgets:
    """What one client may send per second: messages (``messages_per_second``) and pings
    (``pings_per_second``: a ping flood is a write amplifier, every ping costs a pong)."""

    __slots__ = ("_messages", "_pings")

    def __init__(self, limits: LimitsSettings) -> None:
        self._messages = TokenBucket(limits.messages_per_second, limits.messages_burst)
        self._pings = TokenBucket(limits.pings_per_second, limits.pings_burst)

    def message(self, now: float) -> None:
        """Count one inbound message at ``now`` (seconds).

        Raises:
            LimitExceeded: ``messages_per_second`` is spent.
        """
        if not self._messages.take(now):
            rate = self._messages.rate
            raise LimitExceeded("messages_per_second", f"more than {rate:g} messages/s")

    def ping(self, now: float) -> None:
        """Count one inbound ping at ``now`` (seconds).

        Raises:
            LimitExceeded: ``pings_per_second`` is spent.
        """
        if not self._pings.take(now):
            rate = self._pings.rate
            raise LimitExceeded("pings_per_second", f"more than {rate:g} pings/s")
