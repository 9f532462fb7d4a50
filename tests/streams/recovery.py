"""A WAMP v2 peer that recovers: SUBSCRIBE with ``_recover``, EVENTs with ``_position``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gos_web_socket.app.testing import RawPeer

SUBSCRIBE, SUBSCRIBED, EVENT = 32, 33, 36
ROUTES: dict[str, Any] = {
    "acme_topic": {
        "pattern": "acme/channel/{room}",
        "callback": "acme.topic",
        "history": {"size": 1000, "ttl": 300},
    },
    "plain_topic": {"pattern": "acme/plain/{room}", "callback": "acme.topic"},
}
"""acme_topic keeps 1,000 pushes per channel for 5 minutes; plain_topic keeps none."""


@dataclass
class Subscribed:
    """What one recovering subscription got: replayed and live payloads, the last report."""

    subscription: int
    position: dict[str, Any] | None = None
    report: dict[str, Any] | None = None
    payloads: list[Any] = field(default_factory=list)
    positions: list[dict[str, Any]] = field(default_factory=list)


class RecoveringPeer:
    """One v2 session on a raw socket, subscribed to one channel, counting what it reads."""

    def __init__(self, peer: RawPeer, channel: str) -> None:
        self.peer = peer
        self.channel = channel
        self.state: Subscribed | None = None

    @classmethod
    async def connect(cls, url: str, channel: str, since: Any = True) -> RecoveringPeer:
        """Join, subscribe with ``_recover: since`` and wait for SUBSCRIBED."""
        peer = await RawPeer.connect(url)
        welcome = await peer.hello()
        assert welcome[0] == 2, welcome
        self = cls(peer, channel)
        peer.send([SUBSCRIBE, 1, {"_recover": since}, channel])
        while True:
            message = await peer.receive()
            if message[0] == SUBSCRIBED:
                self.state = Subscribed(message[2])
                return self
            # EVENTs before SUBSCRIBED carry an unknown subscription id: a client drops them

    async def _one(self, timeout: float) -> None:  # noqa: ASYNC109 - per message
        state = self.state
        assert state is not None
        message = await self.peer.receive(timeout)
        assert message[0] == EVENT and message[1] == state.subscription, message
        details = message[3]
        if "_recovery" in details:
            state.report = details["_recovery"]
            state.position = state.report["position"]
            return
        state.payloads.append(message[4][0])
        state.positions.append(details["_position"])
        state.position = details["_position"]

    async def read(self, until: int, timeout: float = 10.0) -> Subscribed:  # noqa: ASYNC109
        """Read EVENTs until ``until`` payloads arrived in total (a report counts none)."""
        assert self.state is not None
        while len(self.state.payloads) < until:
            await self._one(timeout)
        return self.state

    async def report(self, timeout: float = 10.0) -> dict[str, Any]:  # noqa: ASYNC109
        """Read up to the recovery report and return it."""
        assert self.state is not None
        self.state.report = None
        while self.state.report is None:
            await self._one(timeout)
        return self.state.report

    def close(self) -> None:
        self.peer.close()
