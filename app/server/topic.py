"""A live topic: one channel string, its subscribers, its timers and the one broadcast path.

Its subscribers are ``Members`` (members.py); what it keeps for clients that recover is a
``CatchUp`` (catchup.py); its broadcasts reach the subscribers through its ``Fanout``
(fanout.py). What a hook call receives is a view of it (topic_views.py).

The user's code behind a route callback is a ``TopicHandler`` (app/server/handlers.py), shared
by every channel the route matches; a ``Topic`` is the server's object for one channel.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterator, Mapping
from typing import Any, Protocol

from gos_web_socket.app.history import ChannelHistory, HistoryStore, Recovery
from gos_web_socket.app.push import Push, PushMode
from gos_web_socket.app.server.catchup import CatchUp, Kept
from gos_web_socket.app.server.fanout import Fanout, Turns
from gos_web_socket.app.server.members import Members, Subscriber
from gos_web_socket.app.server.session import WireFormat, event_frame, new_publication_id
from gos_web_socket.app.server.timers import PeriodicTimers

_subscription_ids = itertools.count(1)
"""WAMP v2 subscription ids: router scope, one per live topic or pattern subscription."""


def new_subscription_id() -> int:
    """A fresh v2 subscription id (topics and pattern subscriptions share the counter)."""
    return next(_subscription_ids)


def start_subscription_ids(first: int) -> None:
    """Number new subscriptions from ``first`` (each worker its own range: the meta API
    names subscriptions across workers, wamp2/meta_workers.py)."""
    global _subscription_ids
    _subscription_ids = itertools.count(first)


class Patterns(Protocol):
    """The pattern subscriptions a broadcast also reaches (wamp2/patterns.py)."""

    @property
    def active(self) -> bool: ...

    def frames(
        self,
        uri: str,
        publication: int,
        payload: Any,
        exclude: Collection[str] = (),
        eligible: Collection[str] = (),
        details: Mapping[str, Any] | None = None,
    ) -> list[tuple[Subscriber, bytes]]: ...


class Topic:
    """One channel and the connections subscribed to it, by session id.

    ``broadcast`` records a push's broadcast in the channel's history, keeps it for held
    subscribers and hands it to the pattern subscriptions and to its ``Fanout`` (fanout.py),
    which frames the EVENT once per wire format among the subscribers (WAMP v1, v2 JSON, v2
    msgpack). With ``turns`` (every topic of a running server has them), the frames of one
    loop turn are kept and each subscriber gets their join in one call at the end of the turn
    (``write_turn``). Either way a client's frames of one loop turn leave in one
    ``transport.write``, in the order they were queued. ``subscription_id`` is this topic's
    v2 subscription id, shared by all its v2 subscribers so that they can share one frame.
    """

    __slots__ = (
        "id",
        "timers",
        "timers_registered",
        "subscription_id",
        "history",
        "store",
        "_members",
        "_catchup",
        "_fanout",
        "patterns",
    )

    def __init__(
        self,
        topic_id: str,
        history: ChannelHistory | None = None,
        store: HistoryStore | None = None,
        turns: Turns | None = None,
        patterns: Patterns | None = None,
    ) -> None:
        self.id = topic_id
        self.patterns = patterns
        """Pattern subscriptions covering this channel get its broadcasts too (live ones)."""
        self.history = history
        """The channel's history when its route keeps one (``history: {size, ttl}``)."""
        self.store = store
        self.timers = PeriodicTimers(f"topic {topic_id}")
        self.timers_registered = False
        self.subscription_id = new_subscription_id()
        self._members = Members()
        self._catchup = CatchUp()
        self._fanout = Fanout(self, self._members, turns)

    def broadcast(
        self,
        payload: Any,
        exclude: Collection[str] = (),
        eligible: Collection[str] = (),
        push: Push | None = None,
        *,
        disclosed: Mapping[str, Any] | None = None,
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

        ``disclosed``: EVENT details naming a publisher (v2 ``disclose_me``); only the view
        ``on_publish`` receives (``PublishedTopic``) passes them, for its own channel.
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
                eligible = self._catchup.behind(position)
                if not eligible:
                    return 0
        publication = new_publication_id()
        details = disclosed
        patterns = self.patterns
        pattern_frames = (
            patterns.frames(self.id, publication, payload, exclude, eligible, details)
            if patterns is not None and patterns.active and (push is None or push.is_live)
            else ()
        )  # built before any exact subscriber's frame is written or kept
        topic, subscription = self.id, self.subscription_id
        held = self._catchup.held
        if held:  # the closure's one cell (``event``): a broadcast pays no more for it
            event = (topic, subscription, publication, payload, position, details)
            held.keep(lambda wire: event_frame(wire, *event), position, exclude, eligible)
        sent = self._fanout.send(
            topic, subscription, publication, payload, position, details, exclude, eligible
        )
        return sent + sum(1 for member, frame in pattern_frames if member.write_frame(frame))

    def includes(self, session_id: str) -> bool:
        """Whether the client subscribed here (held or not)."""
        return session_id in self._members

    def write_turn(self, now: bool) -> int:
        """Hand each subscriber this turn's frames, joined, in one call (``Fanout.write_turn``:
        the flusher calls it at the turn's end, or earlier to keep a client's frames in order)."""
        return self._fanout.write_turn(now)

    def hold(self, connection: Subscriber) -> None:
        """Stop writing broadcasts to a subscriber and keep them, until ``release``: its
        recovery may wait for the log, and what it replays must come before them."""
        held = self._catchup.held
        if not self.has(connection) or connection.session_id in held:
            return
        self._fanout.before_change()
        held.add(connection)
        self._members.unlist(connection)

    def release(self, connection: Subscriber) -> Kept | None:
        """Write broadcasts to a held subscriber again; returns what was broadcast to it while
        it was held, with positions (None: more than ``HOLD_LIMIT``, some were dropped)."""
        held = self._catchup.held
        if connection.session_id not in held:
            return []
        self._fanout.before_change()
        entry = held.pop(connection.session_id)
        assert entry is not None
        self._members.list(connection)
        return entry[1]

    def replay(self, connection: Subscriber, recovery: Recovery) -> list[bytes]:
        """The frames of what a recovering client missed, each EVENT with its position, for
        the caller to write (at the client's pace: ``write_paced``); from now on the client
        also gets the pushes this node reads back from its log (``PushMode.REFILL``)."""
        channel = self.id, self.subscription_id
        return self._catchup.replay(connection, recovery, channel, self.has(connection))

    def add(self, connection: Subscriber) -> None:
        self._fanout.before_change()
        self._members.add(connection)

    def remove(self, connection: Subscriber) -> None:
        if not self._members.has(connection):
            return
        self._fanout.before_change()
        self._members.drop(connection)
        self._catchup.forget(connection.session_id)

    def has(self, connection: Subscriber) -> bool:
        return self._members.has(connection)

    @property
    def wire_formats(self) -> list[WireFormat]:
        """The wire formats broadcasts are framed in now: one frame each per broadcast."""
        return list(self._members.formats)

    def __len__(self) -> int:
        return len(self._members)

    def __iter__(self) -> Iterator[Subscriber]:
        return iter(self._members)

    def __repr__(self) -> str:
        return f"Topic({self.id!r}, subscribers={len(self._members)})"

    @property
    def push(self) -> Push | None:
        """The push this topic is bound to (the topic ``on_push`` receives); None here, on the
        channel topic itself. ``topic.push.is_live`` tells a refill or read-back apart."""
        return None
