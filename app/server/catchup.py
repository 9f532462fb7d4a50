"""What a topic keeps for clients that recover (docs/streams.md): subscribers held while their
recovery is prepared, with what was broadcast to them meanwhile; the position each recovered
client has reached, for the pushes read back from the log (refills); and the EVENT frames a
mass reconnect replays, shared for a few seconds."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection

from gos_web_socket.app.history import Recovery
from gos_web_socket.app.position import Position
from gos_web_socket.app.server.members import Subscriber
from gos_web_socket.app.server.session import WireFormat, new_publication_id

REPLAY_FRAMES_KEPT = 5.0
"""Seconds a topic keeps the EVENT frames it replayed: clients recovering together (a mass
reconnect) share them; afterwards they are let go, so history does not hold its payloads twice."""

HOLD_LIMIT = 10_000
"""Broadcasts a topic keeps for one held subscriber (``hold``); past it the recovery that held
the subscriber is reported incomplete."""


Kept = list[tuple[Position | None, bytes]]
"""Broadcasts kept for a held subscriber: each EVENT frame with its position (None: not
recorded)."""


class Held:
    """Subscribers held while their recovery is prepared (``Topic.hold``), each with what was
    broadcast to it meanwhile (None: more than ``HOLD_LIMIT``, some were dropped)."""

    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held: dict[str, tuple[Subscriber, Kept | None]] = {}

    def __bool__(self) -> bool:
        return bool(self._held)

    def __contains__(self, session_id: str) -> bool:
        return session_id in self._held

    def add(self, connection: Subscriber) -> None:
        self._held[connection.session_id] = (connection, [])

    def pop(self, session_id: str) -> tuple[Subscriber, Kept | None] | None:
        """Stop holding a subscriber: it and what was kept for it; None: it was not held."""
        return self._held.pop(session_id, None)

    def keep(
        self,
        frame: Callable[[WireFormat], bytes],
        position: Position | None,
        exclude: Collection[str],
        eligible: Collection[str],
    ) -> None:
        """Keep a broadcast for the held subscribers it is meant for, framed (``frame``) once
        per wire format (a mass reconnect holds thousands at once)."""
        frames: dict[WireFormat, bytes] = {}
        for session_id, (connection, kept) in self._held.items():
            if session_id in exclude or (eligible and session_id not in eligible):
                continue
            if kept is None:
                continue
            if len(kept) >= HOLD_LIMIT:
                self._held[session_id] = (connection, None)
                continue
            wire = connection.wire_format
            framed = frames.get(wire)
            if framed is None:
                framed = frames[wire] = frame(wire)
            kept.append((position, framed))


class CatchUp:
    """A topic's recovering clients: held ones (``held``), how far each recovered one has
    reached, and the replayed frames they share."""

    __slots__ = ("held", "_reached", "_replayed")

    def __init__(self) -> None:
        self.held = Held()
        """Subscribers held while their recovery is prepared, and what was broadcast meanwhile."""
        self._reached: dict[str, Position | None] = {}
        """Clients that recovered here (session ids), and the position each one has reached."""
        self._replayed: dict[tuple[WireFormat, Position], bytes] | None = None
        """Replayed EVENT frames by wire format and position, for ``REPLAY_FRAMES_KEPT`` s."""

    def forget(self, session_id: str) -> bool:
        """A subscriber left; True when it was held."""
        self._reached.pop(session_id, None)
        return self.held.pop(session_id) is not None

    def behind(self, position: Position | None) -> list[str]:
        """Recovered clients that have not reached ``position`` yet; they are moved to it."""
        if position is None:
            return []
        behind = [
            session_id
            for session_id, reached in self._reached.items()
            if reached is None
            or reached.epoch != position.epoch
            or reached.offset < position.offset
        ]
        for session_id in behind:
            self._reached[session_id] = position
        return behind

    def replay(
        self,
        connection: Subscriber,
        recovery: Recovery,
        channel: tuple[str, int],
        subscribed: bool,
    ) -> list[bytes]:
        """The frames of what a recovering client missed on ``channel`` (topic, subscription
        id), each EVENT with its position; a ``subscribed`` client from now on also gets the
        pushes this node reads back from its log (``behind``)."""
        if subscribed:
            self._reached[connection.session_id] = recovery.position
        if not recovery.publications:
            return []
        wire, (topic, subscription) = connection.wire_format, channel
        frames = self._replayed
        if frames is None:
            frames = self._replayed = {}
            asyncio.get_running_loop().call_later(REPLAY_FRAMES_KEPT, self._forget_replayed)
        replayed = []
        for publication in recovery.publications:
            key = wire, publication.position
            frame = frames.get(key)
            if frame is None:  # one publication id for every client that replays it
                frame = frames[key] = wire.event_frame(
                    topic,
                    subscription,
                    new_publication_id(),
                    publication.payload,
                    publication.position,
                )
            replayed.append(frame)
        return replayed

    def _forget_replayed(self) -> None:
        self._replayed = None
