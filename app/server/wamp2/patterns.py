"""Pattern-based subscriptions (SUBSCRIBE ``match: prefix | wildcard``): who gets an EVENT of
a channel because a pattern covers it, with ``details.topic`` naming the channel.

One ``PatternSubscriptions`` per process; every ``Topic`` the manager makes asks it at each
broadcast, only while any pattern subscription exists (``active``): exact subscriptions keep
their own path (topic.py) and pay one attribute test. A subscription id is one per
(pattern, match), shared by its subscribers (as for a topic), from the topics' counter.

Authorization runs at delivery, per channel: an ``Access`` says which subscribers may read
an event of a channel (the route's ``subscribe`` rule); a channel whose route has no rule
that can be checked without the client (a ``SecuredTopic``, no route) reaches no pattern
subscriber.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from gos_web_socket.app.server.members import Subscriber
from gos_web_socket.app.server.session import event_frame
from gos_web_socket.app.server.wamp2.matching import matches

if TYPE_CHECKING:
    from gos_web_socket.app.auth.user import User
    from gos_web_socket.app.server.session import WireFormat

MATCHED_KEPT = 4096
"""Channels whose matching pattern subscriptions are remembered (forgotten at any change)."""


class Reader(Subscriber, Protocol):
    """A pattern subscriber: a connection, and who its user is (for the route's rules)."""

    @property
    def user(self) -> User: ...


class Access(Protocol):
    """Who may read events of a channel through a pattern (the broker: route rules)."""

    def readers(self, uri: str) -> Callable[[Reader], bool] | None:
        """The test a pattern subscriber must pass to get an event of ``uri``; None: nobody."""
        ...


@dataclass(slots=True, eq=False)
class PatternSubscription:
    """One (match, pattern) and its subscribers, by session id."""

    id: int
    match: str
    pattern: str
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    members: dict[str, Reader] = field(default_factory=dict)


class PatternSubscriptions:
    """Every pattern subscription of this process, by (match, pattern), by id, by session."""

    __slots__ = ("_access", "_by_id", "_by_key", "_by_session", "_matched", "_new_id")

    def __init__(self, access: Access, new_id: Callable[[], int]) -> None:
        self._access = access
        self._new_id = new_id
        self._by_key: dict[tuple[str, str], PatternSubscription] = {}
        self._by_id: dict[int, PatternSubscription] = {}
        self._by_session: dict[str, set[int]] = {}
        self._matched: dict[str, list[PatternSubscription]] = {}

    @property
    def active(self) -> bool:
        """Any pattern subscription exists: broadcasts must ask ``frames``."""
        return bool(self._by_id)

    def __iter__(self) -> Any:
        return iter(list(self._by_id.values()))

    def get(self, subscription_id: int) -> PatternSubscription | None:
        return self._by_id.get(subscription_id)

    def lookup(self, match: str, pattern: str) -> PatternSubscription | None:
        return self._by_key.get((match, pattern))

    def held(self, session_id: str) -> int:
        """How many pattern subscriptions ``session_id`` holds (``max_subscriptions``)."""
        return len(self._by_session.get(session_id, ()))

    def add(self, connection: Reader, match: str, pattern: str) -> tuple[PatternSubscription, bool]:
        """Subscribe ``connection`` (again: nothing changes); and whether the subscription
        is new."""
        key = (match, pattern)
        subscription = self._by_key.get(key)
        created = subscription is None
        if subscription is None:
            subscription = PatternSubscription(self._new_id(), match, pattern)
            self._by_key[key] = self._by_id[subscription.id] = subscription
            self._matched.clear()
        subscription.members[connection.session_id] = connection
        self._by_session.setdefault(connection.session_id, set()).add(subscription.id)
        return subscription, created

    def remove(
        self, session_id: str, subscription_id: int
    ) -> tuple[PatternSubscription, bool] | None:
        """Unsubscribe ``session_id``; and whether the subscription is gone (no member left).
        None: it does not hold that subscription."""
        held = self._by_session.get(session_id)
        if held is None or subscription_id not in held:
            return None
        held.discard(subscription_id)
        if not held:
            del self._by_session[session_id]
        subscription = self._by_id[subscription_id]
        del subscription.members[session_id]
        if subscription.members:
            return subscription, False
        del self._by_id[subscription_id], self._by_key[subscription.match, subscription.pattern]
        self._matched.clear()
        return subscription, True

    def leave(self, session_id: str) -> list[tuple[PatternSubscription, bool]]:
        """Drop every pattern subscription of a gone session."""
        ids = sorted(self._by_session.get(session_id, ()))
        return [gone for i in ids if (gone := self.remove(session_id, i)) is not None]

    def matching(self, uri: str) -> list[PatternSubscription]:
        """The pattern subscriptions covering ``uri``, oldest first."""
        found = self._matched.get(uri)
        if found is None:
            found = [s for s in self._by_id.values() if matches(s.match, s.pattern, uri)]
            if len(self._matched) >= MATCHED_KEPT:
                self._matched.clear()
            self._matched[uri] = found
        return found

    def frames(
        self,
        uri: str,
        publication: int,
        payload: Any,
        exclude: Collection[str] = (),
        eligible: Collection[str] = (),
        details: Mapping[str, Any] | None = None,
    ) -> list[tuple[Subscriber, bytes]]:
        """The EVENT frames of ``payload`` on channel ``uri`` for the pattern subscribers
        allowed to read it, with ``details.topic``, each with its subscriber, for the caller
        to write once every frame of the broadcast is built (topic.py). One event reaching a
        session through several subscriptions arrives once per subscription (the spec)."""
        found = self.matching(uri)
        if not found:
            return []
        readers = self._access.readers(uri)
        if readers is None:
            return []
        skip = set(exclude)
        only = set(eligible) if eligible else None
        event_details = {"topic": uri, **(details or {})}
        writes: list[tuple[Subscriber, bytes]] = []
        for subscription in found:
            frames: dict[WireFormat, bytes] = {}
            for session_id, member in subscription.members.items():
                if session_id in skip or (only is not None and session_id not in only):
                    continue
                if not readers(member):
                    continue
                wire = member.wire_format
                frame = frames.get(wire)
                if frame is None:
                    frame = frames[wire] = event_frame(
                        wire, uri, subscription.id, publication, payload, None, event_details
                    )
                writes.append((member, frame))
        return writes
