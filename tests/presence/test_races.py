"""Two peers' Presence over a link that delivers only when told: lines that cross in flight."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace as NS
from typing import Any

from gos_web_socket.app.events import EventDispatcher
from gos_web_socket.app.presence.service import Presence
from gos_web_socket.settings.limits import LimitsSettings
from gos_web_socket.settings.presence import PresenceSettings

ROOM = "acme/chat/7"
KINDS = ("connected", "disconnected", "joined", "left")


class DelayedLink:
    """One direction of a link between two Presence objects: lines wait for ``deliver``."""

    def __init__(self, source: Presence, target: Presence) -> None:
        self.source, self.target = source, target
        self.queue: list[dict[str, Any]] = []

    def send(self, message: dict[str, Any]) -> None:
        self.queue.append(message)

    def deliver(self) -> None:
        lines, self.queue = self.queue, []
        for line in lines:
            self.target.remote(self.source.origin, line)


def connection(session_id: str, user: str) -> Any:
    return NS(session_id=session_id, user=NS(id=user, info={}), send_event=lambda *a: True)


class Pair:
    """Two linked peers and every lifecycle event either emitted."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str | None]] = []
        self.peers: list[Presence] = []
        for _ in range(2):
            dispatcher = EventDispatcher()
            for kind in KINDS:
                dispatcher.add_listener(f"gos_web_socket.presence.{kind}", self._record)
            presence = Presence(
                PresenceSettings(window=0.05), LimitsSettings(), dispatcher, NS(topics={})
            )
            self.peers.append(presence)
        first, second = self.peers
        self.links = [DelayedLink(first, second), DelayedLink(second, first)]
        first.attach(self.links[0], "worker:0")
        second.attach(self.links[1], "worker:1")
        first.lifecycle.peer_up("worker:1")
        second.lifecycle.peer_up("worker:0")

    async def _record(self, event: Any) -> None:
        self.events.append((event.kind.rsplit(".", 1)[1], event.user_id, event.channel))

    async def open(self, index: int, tab: Any) -> None:
        await self.peers[index].on_connected(NS(connection=tab))
        self.peers[index].joined(tab, ROOM)

    async def close(self, index: int, tab: Any) -> None:
        self.peers[index].left(tab, ROOM)
        await self.peers[index].on_disconnected(NS(connection=tab))

    async def deliver(self) -> None:
        for link in self.links:
            link.deliver()
        for peer in self.peers:
            await peer.settled()
        await asyncio.sleep(0)

    def taken(self) -> list[tuple[str, str, str | None]]:
        events, self.events = sorted(self.events, key=str), []
        return events


async def test_last_two_tabs_closing_at_once_on_two_peers_leave_once() -> None:
    """A user's last two tabs, one per peer, close before either line crosses: one left, one
    disconnected."""
    pair = Pair()
    first, second = connection("1", "42"), connection("2", "42")
    await pair.open(0, first)
    await pair.deliver()
    await pair.open(1, second)
    await pair.deliver()
    assert pair.taken() == sorted([("connected", "42", None), ("joined", "42", ROOM)], key=str)
    await pair.close(0, first)
    await pair.close(1, second)
    await pair.deliver()
    assert pair.taken() == sorted([("disconnected", "42", None), ("left", "42", ROOM)], key=str)
    assert not pair.peers[0].is_online("42") and not pair.peers[1].is_online("42")


async def test_first_two_tabs_opening_at_once_on_two_peers_join_once() -> None:
    """A user's first two tabs open on both peers before either line crosses: one connected,
    one joined."""
    pair = Pair()
    await pair.open(0, connection("3", "43"))
    await pair.open(1, connection("4", "43"))
    await pair.deliver()
    assert pair.taken() == sorted([("connected", "43", None), ("joined", "43", ROOM)], key=str)


async def test_a_dead_peers_users_leave_once_from_the_survivor() -> None:
    """The survivor of two peers emits the dead one's leaves (no emit flag from outside)."""
    pair = Pair()
    for index, user in enumerate(("50", "51", "52", "53")):
        await pair.open(index % 2, connection(str(10 + index), user))
    await pair.deliver()
    pair.taken()
    pair.peers[0].origin_gone("worker:1")
    await pair.deliver()
    assert pair.taken() == sorted(
        [
            (kind, user, ROOM if kind == "left" else None)
            for user in ("51", "53")
            for kind in ("left", "disconnected")
        ],
        key=str,
    )


async def test_a_connection_that_leaves_its_last_channel_unconnected_is_forgotten() -> None:
    """A connection that joined without client_connected (an SSE stream that never opened)
    leaves nothing cached once it left its channels; a connected one stays until it closes."""
    pair = Pair()
    presence = pair.peers[0]
    stream, tab = connection("7", "44"), connection("8", "45")
    presence.joined(stream, ROOM)
    presence.joined(stream, "acme/chat/8")
    await pair.open(0, tab)
    presence.left(stream, ROOM)
    assert presence.tracked() == 2
    presence.left(stream, "acme/chat/8")
    presence.left(tab, ROOM)
    assert presence.tracked() == 1
    await presence.on_disconnected(NS(connection=tab))
    assert presence.tracked() == 0
