"""Which other nodes are alive: one lease rule for every part that links nodes over RabbitMQ.

Presence between nodes (app/presence/cluster.py) and the dealer's calls across nodes
(app/server/wamp2/nodes.py) both ask "is node X still there?". Each node announces itself
periodically; ``Liveness`` keeps when every other node was last heard and says which ones have
been silent longer than the lease, so both answer that question with the same rule: a node
silent for the lease is dead, one that said ``bye`` is gone at once, and a node whose own event
loop stood still longer than the lease (a stall, a paused VM) heard nobody, so it renews every
lease instead of declaring everyone dead.
"""

from __future__ import annotations

import asyncio
import logging

logger = logging.getLogger(__name__)


class Liveness:
    """The other nodes this node hears, and when each was last heard; ``lease``: seconds of
    silence after which one is dead (``expired``)."""

    def __init__(self, lease: float, name: str) -> None:
        self.lease = lease
        self.name = name
        """What the log lines say this liveness is for (``presence nodes``, ``dealer node X``)."""
        self.seen: dict[str, float] = {}
        """Live nodes: when each was last heard (the loop's clock)."""
        self.last_tick: float | None = None
        """When ``expired`` last ran (its own loop's lag is no node's silence)."""

    def __contains__(self, node: object) -> bool:
        return node in self.seen

    @staticmethod
    def now() -> float:
        return asyncio.get_running_loop().time()

    def heard(self, node: str) -> bool:
        """``node`` said something: its lease starts again. True when it was not live (new, or
        given up on): what this node holds of it may be partial."""
        fresh = node not in self.seen
        self.seen[node] = self.now()
        return fresh

    def forget(self, node: str) -> bool:
        """``node`` left (a ``bye``, or it was found dead): True when it was live."""
        return self.seen.pop(node, None) is not None

    def renew(self) -> None:
        """Every live node gets a fresh lease (this node was the one away: broker back)."""
        self.seen = dict.fromkeys(self.seen, self.now())

    def expired(self) -> list[str]:
        """The nodes silent for the lease, taken out of the live set; none when this node's
        own loop is what stood still that long (then every lease is renewed)."""
        now = self.now()
        last, self.last_tick = self.last_tick, now
        if last is not None and now - last > self.lease:
            logger.warning("%s: own loop stalled %.1f s; leases renewed", self.name, now - last)
            self.renew()
            return []
        dead = [node for node, heard in self.seen.items() if now - heard > self.lease]
        for node in dead:
            del self.seen[node]
        return dead
