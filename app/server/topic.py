"""A live topic: one channel string, its subscribers, its timers and the one broadcast path.

The user's code behind a route callback is a ``TopicHandler`` (app/server/handlers.py), shared
by every channel the route matches; a ``Topic`` is the server's object for one channel.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Collection, Iterator
from typing import Any, Protocol

from gos_web_socket.app.history import ChannelHistory, HistoryStore, Recovery
from gos_web_socket.app.position import Position
from gos_web_socket.app.push import Push, PushMode
from gos_web_socket.app.server.session import WireFormat, new_publication_id
from gos_web_socket.app.server.timers import PeriodicTimers

_subscription_ids = itertools.count(1)
"""WAMP v2 subscription ids: router scope, one per live topic."""

REPLAY_FRAMES_KEPT = 5.0
"""Seconds a topic keeps the EVENT frames it replayed: clients recovering together (a mass
reconnect) share them; afterwards they are let go, so history does not hold its payloads twice."""

HOLD_LIMIT = 10_000
"""Broadcasts a topic keeps for one held subscriber (``hold``); past it the recovery that held
the subscriber is reported incomplete."""


class Subscriber(Protocol):
    """What a topic needs of a connection (``WampConnection`` is one)."""

    @property
    def session_id(self) -> str: ...

    @property
    def wire_format(self) -> WireFormat: ...

    @property
    def write_frame(self) -> Callable[[bytes], bool]:
        """Queue one frame for this loop turn's write; False once the client is cut off (a
        bound method or a callable attribute: the connection's is its output's ``write``)."""
        ...

    def write_now(self, frame: bytes) -> bool:
        """Write what is queued and ``frame`` now, in one write; False once the client is cut
        off (the end of the turn, where a topic hands over its frames)."""
        ...

    def send_event(self, topic: str, payload: Any) -> bool: ...


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


class Turns(Protocol):
    """The end of the loop turn, where a topic's frames of the turn are handed over
    (``FlushScheduler``, live.py)."""

    def batch(self, topic: Topic) -> None:
        """``topic`` keeps frames of this turn; have its ``write_turn`` run in time."""

    def seal(self) -> None:
        """Have the batching topic's ``write_turn`` run now."""


class Topic:
    """One channel and the connections subscribed to it, by session id.

    ``broadcast`` encodes and frames the EVENT once per wire format among the subscribers (WAMP
    v1, v2 JSON, v2 msgpack). With ``turns`` (every topic of a running server has them), the
    frames of one loop turn are kept here and each subscriber gets their join in one call at
    the end of the turn (``write_turn``): a burst costs per subscriber once per turn, not once
    per push. Without, each broadcast queues its frame for each subscriber at once. Either
    way a client's frames of one loop turn leave in one ``transport.write``, in the order
    they were queued. ``subscription_id`` is this topic's v2 subscription id, shared by all
    its v2 subscribers so that they can share one frame.
    """

    __slots__ = (
        "id",
        "timers",
        "timers_registered",
        "subscription_id",
        "history",
        "store",
        "_subscribers",
        "_formats",
        "_recovering",
        "_held",
        "_replayed",
        "_turns",
        "_turn",
    )

    def __init__(
        self,
        topic_id: str,
        history: ChannelHistory | None = None,
        store: HistoryStore | None = None,
        turns: Turns | None = None,
    ) -> None:
        self.id = topic_id
        self.history = history
        """The channel's history when its route keeps one (``history: {size, ttl}``)."""
        self.store = store
        self.timers = PeriodicTimers(f"topic {topic_id}")
        self.timers_registered = False
        self.subscription_id = next(_subscription_ids)
        self._subscribers: dict[str, Subscriber] = {}
        self._formats: dict[WireFormat, dict[str, Subscriber]] = {}
        """The subscribers again, grouped by wire format: one frame per group."""
        self._recovering: dict[str, Position | None] = {}
        """Clients that recovered here (session ids), and the position each one has reached."""
        self._held = Held()
        """Subscribers held while their recovery is prepared, and what was broadcast meanwhile."""
        self._replayed: dict[tuple[WireFormat, Position], bytes] | None = None
        """Replayed EVENT frames by wire format and position, for ``REPLAY_FRAMES_KEPT`` s."""
        self._turns = turns
        self._turn: dict[WireFormat, list[bytes]] | None = None
        """The EVENT frames of this loop turn by wire format, not handed over yet."""

    def broadcast(
        self,
        payload: Any,
        exclude: Collection[str] = (),
        eligible: Collection[str] = (),
        push: Push | None = None,
    ) -> int:
        """Send an EVENT of ``payload`` to subscribers; returns how many were written to.

        Session ids in ``exclude`` are skipped; a non-empty ``eligible`` limits the recipients
        to those ids. Every frame is built before the first write, so a payload that one format
        cannot carry (msgpack bytes for a JSON client) raises before anyone got it.

        ``push`` is the push this broadcast is part of (app/push.py); the topic an ``on_push``
        receives passes its own. Without one the broadcast is live and recorded nowhere. On a
        channel with history, a broadcast to everyone as part of a push is recorded under the
        push's position, which v2 EVENTs carry in ``details._position``; a filtered broadcast
        (``exclude``/``eligible``) is not kept, so no recovery leaks it. A refill is sent only
        to recovered clients behind it, a read-back only captured.
        """
        position = None
        if push is not None:
            store = None if exclude or eligible else self.store
            history = None if store is None else self.history
            if push.mode is PushMode.READ_BACK:  # for a recovery: only kept, never sent
                if history is not None and push.capture is not None:
                    push.capture.take(self.id, push.position, payload)
                return 0
            if history is not None and store is not None:
                position = store.record(history, push.position, payload)
            if push.mode is PushMode.REFILL:
                # A push handled before the node restarted: only clients that recovered here
                # and are behind it get it (their replay stopped short of it).
                eligible = self._behind(position)
                if not eligible:
                    return 0
        publication = new_publication_id()
        topic, subscription = self.id, self.subscription_id
        if self._held:
            self._held.keep(
                lambda wire: wire.event_frame(topic, subscription, publication, payload, position),
                position,
                exclude,
                eligible,
            )
        if not self._formats:
            return 0
        if self._turns is not None and not exclude and not eligible:
            return self._keep(topic, subscription, publication, payload, position)
        groups = [
            (wire.event_frame(topic, subscription, publication, payload, position), members)
            for wire, members in self._formats.items()
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

    def _keep(
        self,
        topic: str,
        subscription: int,
        publication: int,
        payload: Any,
        position: Position | None,
    ) -> int:
        """Keep a broadcast to every subscriber for the end of the turn; returns how many
        subscribers it is for. Every frame is built before any is kept."""
        turn = self._turn
        if turn is None:
            assert self._turns is not None
            self._turns.batch(self)  # another topic's frames of this turn go out first
            turn = self._turn = {wire: [] for wire in self._formats}
        framed = [
            (frames, wire.event_frame(topic, subscription, publication, payload, position))
            for wire, frames in turn.items()
        ]
        for frames, frame in framed:
            frames.append(frame)
        return sum(map(len, self._formats.values()))

    def includes(self, session_id: str) -> bool:
        """Whether the client subscribed here (held or not)."""
        return session_id in self._subscribers

    def write_turn(self, now: bool) -> int:
        """Hand each subscriber this turn's frames, joined, in one call: written ``now`` (the
        turn's end) or queued (``write_frame``: the turn goes on). Returns how many frames
        were handed over beyond one per call (a call counts one frame)."""
        turn, self._turn = self._turn, None
        extra = 0
        for wire, frames in (turn or {}).items():
            members = self._formats.get(wire)
            if not frames or not members:
                continue
            joined = frames[0] if len(frames) == 1 else b"".join(frames)
            written = 0
            for connection in list(members.values()):
                if (connection.write_now if now else connection.write_frame)(joined):
                    written += 1
            extra += (len(frames) - 1) * written
        return extra

    def _members_change(self) -> None:
        """Subscribers join, leave, are held or released: this turn's frames go to the
        members they were broadcast to, first."""
        if self._turn is not None and self._turns is not None:
            self._turns.seal()

    def hold(self, connection: Subscriber) -> None:
        """Stop writing broadcasts to a subscriber and keep them, until ``release``: its
        recovery may wait for the log, and what it replays must come before them."""
        session_id = connection.session_id
        if not self.has(connection) or session_id in self._held:
            return
        self._members_change()
        self._held.add(connection)
        members = self._formats[connection.wire_format]
        del members[session_id]
        if not members:
            del self._formats[connection.wire_format]

    def release(self, connection: Subscriber) -> Kept | None:
        """Write broadcasts to a held subscriber again; returns what was broadcast to it while
        it was held, with positions (None: more than ``HOLD_LIMIT``, some were dropped)."""
        session_id = connection.session_id
        if session_id not in self._held:
            return []
        self._members_change()
        entry = self._held.pop(session_id)
        assert entry is not None
        self._formats.setdefault(connection.wire_format, {})[session_id] = connection
        return entry[1]

    def _behind(self, position: Position | None) -> list[str]:
        """Recovered clients that have not reached ``position`` yet; they are moved to it."""
        if position is None:
            return []
        behind = [
            session_id
            for session_id, reached in self._recovering.items()
            if reached is None
            or reached.epoch != position.epoch
            or reached.offset < position.offset
        ]
        for session_id in behind:
            self._recovering[session_id] = position
        return behind

    def replay(self, connection: Subscriber, recovery: Recovery) -> None:
        """Write what a recovering client missed, each EVENT with its position; from now on it
        also gets the pushes this node reads back from its log (``PushMode.REFILL``)."""
        if self.has(connection):
            self._recovering[connection.session_id] = recovery.position
        if not recovery.publications:
            return
        wire, subscription = connection.wire_format, self.subscription_id
        frames = self._replayed
        if frames is None:
            frames = self._replayed = {}
            asyncio.get_running_loop().call_later(REPLAY_FRAMES_KEPT, self._forget_replayed)
        for publication in recovery.publications:
            key = wire, publication.position
            frame = frames.get(key)
            if frame is None:  # one publication id for every client that replays it
                frame = frames[key] = wire.event_frame(
                    self.id,
                    subscription,
                    new_publication_id(),
                    publication.payload,
                    publication.position,
                )
            connection.write_frame(frame)

    def _forget_replayed(self) -> None:
        self._replayed = None

    def add(self, connection: Subscriber) -> None:
        self._members_change()
        session_id = connection.session_id
        self._subscribers[session_id] = connection
        self._formats.setdefault(connection.wire_format, {})[session_id] = connection

    def remove(self, connection: Subscriber) -> None:
        session_id = connection.session_id
        if self._subscribers.get(session_id) is not connection:
            return
        self._members_change()
        del self._subscribers[session_id]
        self._recovering.pop(session_id, None)
        if self._held.pop(session_id) is not None:
            return  # not among the formats while held
        wire = connection.wire_format
        members = self._formats[wire]
        del members[session_id]
        if not members:
            del self._formats[wire]

    def has(self, connection: Subscriber) -> bool:
        return self._subscribers.get(connection.session_id) is connection

    def __len__(self) -> int:
        return len(self._subscribers)

    def __iter__(self) -> Iterator[Subscriber]:
        return iter(list(self._subscribers.values()))

    def __repr__(self) -> str:
        return f"Topic({self.id!r}, subscribers={len(self._subscribers)})"

    @property
    def push(self) -> Push | None:
        """The push this topic is bound to (the topic ``on_push`` receives); None here, on the
        channel topic itself. ``topic.push.is_live`` tells a refill or read-back apart."""
        return None

    def bound(self, push: Push) -> BoundTopic:
        """This topic as the ``on_push`` of ``push`` sees it: its broadcasts are the push's."""
        return BoundTopic(self, push)


class BoundTopic(Topic):
    """A channel's ``Topic`` bound to one push: what ``PushableTopic.on_push`` receives.

    ``broadcast`` is the channel topic's, made part of ``push`` (recorded at its position, a
    refill, a capture: app/push.py) until the push is handled (``end``); everything else reads
    and writes the channel topic itself, so user code written against ``Topic`` keeps working.
    A broadcast through this view after ``on_push`` returned (a task, a timer that kept it) is
    a live one of its own, as one on ``unbound`` (the channel topic) is.
    """

    __slots__ = ("unbound", "_push", "_ended")

    unbound: Topic
    _push: Push
    _ended: bool

    def __init__(self, topic: Topic, push: Push) -> None:
        object.__setattr__(self, "unbound", topic)
        object.__setattr__(self, "_push", push)
        object.__setattr__(self, "_ended", False)

    @property
    def push(self) -> Push:
        """The push this view belongs to."""
        return self._push

    def end(self) -> None:
        """The push was handled: later broadcasts through this view are not part of it."""
        object.__setattr__(self, "_ended", True)

    def broadcast(
        self,
        payload: Any,
        exclude: Collection[str] = (),
        eligible: Collection[str] = (),
        push: Push | None = None,
    ) -> int:
        """``Topic.broadcast`` on the channel topic, as part of this view's push (until
        ``end``) or of ``push`` when given."""
        if push is None and not self._ended:
            push = self._push
        return self.unbound.broadcast(payload, exclude, eligible, push)

    def __getattr__(self, name: str) -> Any:
        """The channel topic's state (this view's own slots of ``Topic`` stay empty)."""
        if name == "unbound":  # not set yet (a copy): no endless lookup
            raise AttributeError(name)
        return getattr(self.unbound, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.unbound, name, value)

    def __repr__(self) -> str:
        return f"BoundTopic({self.unbound!r}, {self._push.mode.value})"
