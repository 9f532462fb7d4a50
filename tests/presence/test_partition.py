"""Two nodes' PresenceCluster wired by hand (no broker): partitions, late lines, own loop lag."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace as NS
from typing import Any

from gos_web_socket.app.events import EventDispatcher
from gos_web_socket.app.presence.cluster import PresenceCluster
from gos_web_socket.app.presence.service import Presence
from gos_web_socket.settings.limits import LimitsSettings
from gos_web_socket.settings.presence import PresenceSettings
from gos_web_socket.settings.pushers import AmqpSettings

ROOM = "acme/chat/7"
LEASE = 3.0


class Wired(PresenceCluster):
    """A node whose lines wait in ``sent`` until the test pumps them."""

    def __init__(self, presence: Presence, settings: PresenceSettings) -> None:
        super().__init__(AmqpSettings(), settings, presence)
        self.sent: list[dict[str, Any]] = []

    def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message | {"from": self.origin})


class Two:
    """Nodes A and B, every lifecycle event each emitted."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []
        self.nodes: list[Wired] = []
        for name in "AB":
            settings = PresenceSettings(window=0.05, lease=LEASE, nodes={"enabled": True})
            dispatcher = EventDispatcher()
            for kind in ("connected", "disconnected", "joined", "left"):
                dispatcher.add_listener(f"gos_web_socket.presence.{kind}", self._recorder(name))
            presence = Presence(settings, LimitsSettings(), dispatcher, NS(topics={}))
            self.nodes.append(Wired(presence, settings))
        self.a, self.b = self.nodes

    def _recorder(self, name: str) -> Any:
        async def record(event: Any) -> None:
            self.events.append((name, event.kind.rsplit(".", 1)[1], event.user_id))

        return record

    async def pump(self) -> None:
        while self.a.sent or self.b.sent:
            for source, target in ((self.a, self.b), (self.b, self.a)):
                lines, source.sent = source.sent, []
                for line in lines:
                    target.received(line)

    async def settled(self) -> list[tuple[str, str, str]]:
        """The events emitted since the last call (once every node delivered its own)."""
        for node in self.nodes:
            await node.presence.settled()
        await asyncio.sleep(0)
        events, self.events = sorted(self.events), []
        return events

    async def start(self) -> None:
        """Both linked, and for longer than a lease (both may emit)."""
        self.a._connected()
        self.b._connected()
        await self.pump()
        for node in self.nodes:
            presence = node.presence
            lifecycle = presence.lifecycle
            lifecycle.since = (lifecycle.since or 0.0) - 2 * LEASE
            lifecycle.peers = {o: since - 2 * LEASE for o, since in lifecycle.peers.items()}

    def silence(self, node: Wired, seconds: float) -> None:
        """``node`` heard its peers last ``seconds`` ago."""
        node.live.seen = {origin: last - seconds for origin, last in node.live.seen.items()}


def tab(session_id: str, user: str) -> Any:
    return NS(session_id=session_id, user=NS(id=user, info={}), send_event=lambda *a: True)


async def join(node: Wired, connection: Any) -> None:
    await node.presence.on_connected(NS(connection=connection))
    node.presence.joined(connection, ROOM)


async def test_a_partition_longer_than_the_lease_leaves_then_joins_again() -> None:
    """A expires B after the lease (leaves), and when B is back its users join again."""
    two = Two()
    await two.start()
    await join(two.b, tab("9", "42"))
    await two.pump()
    await two.settled()
    assert two.a.presence.is_online("42")
    two.b.sent.clear()  # B's broker is away: its lines are lost
    two.silence(two.a, LEASE + 1)
    two.a.expire()
    assert await two.settled() == [("A", "disconnected", "42"), ("A", "left", "42")]
    assert not two.a.presence.is_online("42")
    two.b._connected()  # back: hello, its members, synced
    await two.pump()
    assert two.a.presence.is_online("42") and two.a.presence.counts(ROOM) == (1, 1)
    assert await two.settled() == [("A", "connected", "42"), ("A", "joined", "42")]


async def test_own_loop_lag_expires_nobody() -> None:
    """When A's own loop stood still past the lease, A renews the leases instead of expiring."""
    two = Two()
    await two.start()
    await join(two.b, tab("9", "42"))
    await two.pump()
    await two.settled()
    two.a.expire()
    two.a.live.last_tick = (two.a.live.last_tick or 0.0) - (LEASE + 1)
    two.silence(two.a, LEASE + 1)
    two.a.expire()
    assert two.a.presence.is_online("42") and two.b.origin in two.a.live
    assert await two.settled() == []


async def test_a_late_change_from_an_expired_node_brings_its_whole_view() -> None:
    """After expiry, B's first line is a change, not a beat: A still asks and gets all of B."""
    two = Two()
    await two.start()
    await join(two.b, tab("9", "42"))
    await two.pump()
    await two.settled()
    two.silence(two.a, LEASE + 1)
    two.a.expire()
    await join(two.b, tab("10", "43"))
    await two.pump()
    assert two.a.presence.counts(ROOM) == (2, 2) == two.b.presence.counts(ROOM)


async def test_a_short_outage_makes_no_events_but_the_leaves_made_meanwhile() -> None:
    """B back within the lease resends its members: no join again for who stayed, and exactly
    one leave for each who left meanwhile (from B at the time, or from A once B resynced)."""
    two = Two()
    await two.start()
    stays = [tab(str(n), f"s{n}") for n in range(6)]
    goes = [tab(str(10 + n), f"g{n}") for n in range(6)]
    for connection in stays + goes:
        await join(two.b, connection)
    await two.pump()
    await two.settled()
    for connection in goes:
        two.b.presence.left(connection, ROOM)
        await two.b.presence.on_disconnected(NS(connection=connection))
    two.b.sent.clear()  # lost with the broker
    two.b._connected()
    await two.pump()
    assert two.a.presence.counts(ROOM) == (6, 6)
    emitted = [event[1:] for event in await two.settled()]
    gone = [(kind, f"g{n}") for n in range(6) for kind in ("disconnected", "left")]
    assert sorted(emitted) == sorted(gone)
