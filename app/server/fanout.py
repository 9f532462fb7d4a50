"""A topic's broadcasts on their way to its listed subscribers (topic.py owns one ``Fanout``).

Each EVENT is framed once per wire format among the subscribers. With the end of the loop turn
at hand (``Turns``: every topic of a running server has it), the frames of one turn are kept
here and each subscriber gets their join in one call when the turn ends (``write_turn``): a
burst costs per subscriber once per turn, not once per push. Without, or for a broadcast with
an exclusion or an eligible list, each frame is queued for each subscriber at once.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Protocol

from gos_web_socket.app.position import Position
from gos_web_socket.app.server.members import Members
from gos_web_socket.app.server.session import WireFormat, event_frame


class Batched(Protocol):
    """A topic holding the EVENT frames of this loop turn for its subscribers (``Topic``,
    topic.py, through its ``Fanout``)."""

    def includes(self, session_id: str) -> bool:
        """Whether the client is one of the topic's subscribers."""
        ...

    def write_turn(self, now: bool) -> int:
        """Hand each subscriber the turn's frames in one call, written ``now`` or queued;
        returns how many frames were handed over beyond one per call (a call counts one)."""
        ...


class Turns(Protocol):
    """The end of the loop turn, where a topic's frames of the turn are handed over
    (``FlushScheduler``, live.py)."""

    def batch(self, topic: Batched) -> None:
        """``topic`` keeps frames of this turn; have its ``write_turn`` run in time."""

    def seal(self) -> None:
        """Have the batching topic's ``write_turn`` run now."""

    def queued(self, frame_bytes: int) -> None:
        """A broadcast of ``frame_bytes`` per subscriber waits for the turn's end (the
        server's memory budget counts it: memory.py ``OutgoingBudget.queued``)."""


class Fanout:
    """The broadcast path of one topic: ``send`` frames and writes (or keeps), ``write_turn``
    hands the turn's kept frames over. The flusher deals with the topic itself (its
    ``includes`` and ``write_turn``), so ``topic`` is what this tells it is batching."""

    __slots__ = ("_topic", "_members", "_turns", "_turn")

    def __init__(self, topic: Batched, members: Members, turns: Turns | None) -> None:
        self._topic = topic
        self._members = members
        self._turns = turns
        self._turn: dict[WireFormat, list[bytes]] | None = None
        """The EVENT frames of this loop turn by wire format, not handed over yet."""

    def send(
        self,
        topic: str,
        subscription: int,
        publication: int,
        payload: Any,
        position: Position | None,
        details: Mapping[str, Any] | None,
        exclude: Collection[str],
        eligible: Collection[str],
    ) -> int:
        """One EVENT to the listed subscribers (not those in ``exclude``; among ``eligible``
        when it is not empty); returns how many it was written to or kept for. Every frame
        is built before the first is written or kept.

        A broadcast to every subscriber is kept for the end of the turn; a filtered one (a v2
        PUBLISH excludes its publisher) is queued for each of its subscribers at once. Both
        paths are here, one call from ``Topic.broadcast``.
        """
        formats = self._members.formats
        if not formats:
            return 0
        turns = self._turns
        if turns is not None and not exclude and not eligible:
            turn = self._turn
            if turn is None:
                turns.batch(self._topic)  # another topic's frames of this turn go out first
                turn = self._turn = {wire: [] for wire in formats}
            framed = [
                (
                    frames,
                    event_frame(wire, topic, subscription, publication, payload, position, details),
                )
                for wire, frames in turn.items()
            ]
            for frames, frame in framed:
                frames.append(frame)
            turns.queued(max(len(frame) for _, frame in framed))
            return self._members.listed()
        groups = [
            (
                event_frame(wire, topic, subscription, publication, payload, position, details),
                members,
            )
            for wire, members in formats.items()
        ]
        skip = set(exclude) if exclude else None
        only = set(eligible) if eligible else None
        sent = 0
        for frame, members in groups:
            if only is None:
                targets = list(members.values())
            else:
                targets = [members[s] for s in only if s in members]
            for connection in targets:
                if skip is not None and connection.session_id in skip:
                    continue
                if connection.write_frame(frame):
                    sent += 1
        return sent

    def write_turn(self, now: bool) -> int:
        """Hand each subscriber this turn's frames, joined, in one call: written ``now`` (the
        turn's end) or queued (``write_frame``: the turn goes on). Returns how many frames
        were handed over beyond one per call (a call counts one frame)."""
        turn, self._turn = self._turn, None
        extra = 0
        for wire, frames in (turn or {}).items():
            members = self._members.formats.get(wire)
            if not frames or not members:
                continue
            joined = frames[0] if len(frames) == 1 else b"".join(frames)
            # One tight pass per format (a lone push is a write per subscriber: the loop is
            # its only Python cost, bench/results/issue25/lone-push.md); a copy, as a write
            # may cut a client off and drop it from the members.
            if now:
                written = sum(
                    [connection.write_now(joined) for connection in list(members.values())]
                )
            else:
                written = sum(
                    [connection.write_frame(joined) for connection in list(members.values())]
                )
            extra += (len(frames) - 1) * written
        return extra

    def before_change(self) -> None:
        """Subscribers are about to join, leave, be held or released: this turn's frames go
        first, to the members they were broadcast to."""
        if self._turn is not None and self._turns is not None:
            self._turns.seal()
