"""A live topic: one channel string, its subscribers, its timers and the one broadcast path.

Its subscribers are ``Members`` (members.py); what it keeps for clients that recover is a
``CatchUp`` (catchup.py).

The user's code behind a route callback is a ``TopicHandler`` (app/server/handlers.py), shared
by every channel the route matches; a ``Topic`` is the server's object for one channel.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any, Protocol

from gos_web_socket.app.history import ChannelHistory, HistoryStore, Recovery
from gos_web_socket.app.position import Position
from gos_web_socket.app.push import Push, PushMode
from gos_web_socket.app.server.catchup import CatchUp, Kept
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


Narrow = Callable[[Collection[str], Collection[str]], tuple[Collection[str], Collection[str]]]
"""(exclude, eligible) of a broadcast → the (exclude, eligible) to send it with."""


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


class Turns(Protocol):
    """The end of the loop turn, where a topic's frames of the turn are handed over
    (``FlushScheduler``, live.py)."""

    def batch(self, topic: Topic) -> None:
        """``topic`` keeps frames of this turn; have its ``write_turn`` run in time."""

    def seal(self) -> None:
        """Have the batching topic's ``write_turn`` run now."""

    def queued(self, frame_bytes: int) -> None:
        """A broadcast of ``frame_bytes`` per subscriber waits for the turn's end (the
        server's memory budget counts it: memory.py ``OutgoingBudget.queued``)."""


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
        "_members",
        "_catchup",
        "_turns",
        "_turn",
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
        self._turns = turns
        self._turn: dict[WireFormat, list[bytes]] | None = None
        """The EVENT frames of this loop turn by wire format, not handed over yet."""

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
        sent = self._send(payload, exclude, eligible, publication, position, details)
        return sent + sum(1 for member, frame in pattern_frames if member.write_frame(frame))

    def _send(
        self,
        payload: Any,
        exclude: Collection[str],
        eligible: Collection[str],
        publication: int,
        position: Position | None,
        details: Mapping[str, Any] | None = None,
    ) -> int:
        """``broadcast`` to this topic's own subscribers."""
        topic, subscription = self.id, self.subscription_id
        held = self._catchup.held
        if held:
            held.keep(
                lambda wire: event_frame(
                    wire, topic, subscription, publication, payload, position, details
                ),
                position,
                exclude,
                eligible,
            )
        if not self._members.formats:
            return 0
        if self._turns is not None and not exclude and not eligible:
            return self._keep(topic, subscription, publication, payload, position, details)
        groups = [
            (
                event_frame(wire, topic, subscription, publication, payload, position, details),
                members,
            )
            for wire, members in self._members.formats.items()
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
        details: Mapping[str, Any] | None = None,
    ) -> int:
        """Keep a broadcast to every subscriber for the end of the turn; returns how many
        subscribers it is for. Every frame is built before any is kept."""
        turn, turns = self._turn, self._turns
        assert turns is not None  # the caller checked
        if turn is None:
            turns.batch(self)  # another topic's frames of this turn go out first
            turn = self._turn = {wire: [] for wire in self._members.formats}
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

    def includes(self, session_id: str) -> bool:
        """Whether the client subscribed here (held or not)."""
        return session_id in self._members

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

    def _members_change(self) -> None:
        """Subscribers join, leave, are held or released: this turn's frames go to the
        members they were broadcast to, first."""
        if self._turn is not None and self._turns is not None:
            self._turns.seal()

    def hold(self, connection: Subscriber) -> None:
        """Stop writing broadcasts to a subscriber and keep them, until ``release``: its
        recovery may wait for the log, and what it replays must come before them."""
        held = self._catchup.held
        if not self.has(connection) or connection.session_id in held:
            return
        self._members_change()
        held.add(connection)
        self._members.unlist(connection)

    def release(self, connection: Subscriber) -> Kept | None:
        """Write broadcasts to a held subscriber again; returns what was broadcast to it while
        it was held, with positions (None: more than ``HOLD_LIMIT``, some were dropped)."""
        held = self._catchup.held
        if connection.session_id not in held:
            return []
        self._members_change()
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
        self._members_change()
        self._members.add(connection)

    def remove(self, connection: Subscriber) -> None:
        if not self._members.has(connection):
            return
        self._members_change()
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

    def bound(self, push: Push) -> BoundTopic:
        """This topic as the ``on_push`` of ``push`` sees it: its broadcasts are the push's."""
        return BoundTopic(self, push)

    def published(
        self, disclosed: Mapping[str, Any] | None, narrow: Narrow | None = None
    ) -> PublishedTopic:
        """This topic as ``on_publish`` sees it: its broadcasts name the publisher and go
        to those the PUBLISH's lists allow (``PublishedTopic``)."""
        return PublishedTopic(self, disclosed, narrow)


class TopicView(Topic):
    """A channel's ``Topic`` seen by one hook call: everything reads and writes the channel
    topic itself, so user code written against ``Topic`` keeps working; only ``broadcast``
    differs (subclasses), and only until the hook returned (``end``)."""

    __slots__ = ("unbound", "_ended")

    unbound: Topic
    _ended: bool

    def __init__(self, topic: Topic) -> None:
        object.__setattr__(self, "unbound", topic)
        object.__setattr__(self, "_ended", False)

    def end(self) -> None:
        """The hook returned: later broadcasts through this view are plain live ones."""
        object.__setattr__(self, "_ended", True)

    def __getattr__(self, name: str) -> Any:
        """The channel topic's state (this view's own slots of ``Topic`` stay empty)."""
        if name == "unbound":  # not set yet (a copy): no endless lookup
            raise AttributeError(name)
        return getattr(self.unbound, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.unbound, name, value)


class BoundTopic(TopicView):
    """A channel's ``Topic`` bound to one push: what ``PushableTopic.on_push`` receives.

    ``broadcast`` is the channel topic's, made part of ``push`` (recorded at its position, a
    refill, a capture: app/push.py) until the push is handled (``end``). A broadcast through
    this view after ``on_push`` returned (a task, a timer that kept it) is a live one of its
    own, as one on ``unbound`` (the channel topic) is.
    """

    __slots__ = ("_push",)

    _push: Push

    def __init__(self, topic: Topic, push: Push) -> None:
        super().__init__(topic)
        object.__setattr__(self, "_push", push)

    @property
    def push(self) -> Push:
        """The push this view belongs to."""
        return self._push

    def broadcast(
        self,
        payload: Any,
        exclude: Collection[str] = (),
        eligible: Collection[str] = (),
        push: Push | None = None,
        *,
        disclosed: Mapping[str, Any] | None = None,
    ) -> int:
        """``Topic.broadcast`` on the channel topic, as part of this view's push (until
        ``end``) or of ``push`` when given."""
        if push is None and not self._ended:
            push = self._push
        return self.unbound.broadcast(payload, exclude, eligible, push, disclosed=disclosed)

    def __repr__(self) -> str:
        return f"BoundTopic({self.unbound!r}, {self._push.mode.value})"


class PublishedTopic(TopicView):
    """A channel's ``Topic`` as ``on_publish`` receives it for one PUBLISH.

    Its broadcasts carry the EVENT details naming the publisher (``disclose_me``) until the
    hook returned (``end``); other topics' broadcasts, and this one's afterwards (a task the
    hook started), never do: a route with ``disclose_publisher: false`` stays private.
    ``narrow`` (the PUBLISH's authid/authrole lists, wamp2/audience.py) picks the recipients
    of every broadcast through this view when it is sent, among who is subscribed then.
    """

    __slots__ = ("_disclosed", "_narrow")

    _disclosed: Mapping[str, Any] | None
    _narrow: Narrow | None

    def __init__(
        self, topic: Topic, disclosed: Mapping[str, Any] | None, narrow: Narrow | None = None
    ) -> None:
        super().__init__(topic)
        object.__setattr__(self, "_disclosed", disclosed)
        object.__setattr__(self, "_narrow", narrow)

    def broadcast(
        self,
        payload: Any,
        exclude: Collection[str] = (),
        eligible: Collection[str] = (),
        push: Push | None = None,
        *,
        disclosed: Mapping[str, Any] | None = None,
    ) -> int:
        """``Topic.broadcast`` on the channel topic, naming this PUBLISH's publisher until
        ``end``."""
        if disclosed is None and not self._ended:
            disclosed = self._disclosed
        if self._narrow is not None:
            exclude, eligible = self._narrow(exclude, eligible)
        return self.unbound.broadcast(payload, exclude, eligible, push, disclosed=disclosed)

    def __repr__(self) -> str:
        return f"PublishedTopic({self.unbound!r})"
