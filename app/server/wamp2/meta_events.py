"""The meta API's topics (``wamp.session.on_join`` …): who subscribed to which, and sending
one meta event to the subscribers allowed to see it (meta.py decides who is).

With ``server.workers`` > 1 an event reaches the meta subscribers of every worker: each
worker tells the others (through the parent, meta_workers.py ``EventPeers``) which meta
topics have subscribers on it, and sends an event only to the workers listening to its topic,
with what the receiving worker needs to decide who may see it there (``About``): its own route
rules apply, as to its own events.

Meta topics are the router's own: they match no route, reach no topic hook and no pattern
subscriber, and clients cannot publish to them. Each has one subscription id (the topics'
counter) while it has subscribers; events are encoded per subscriber (they are rare).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from gos_web_socket.app.server.session import new_publication_id
from gos_web_socket.app.server.topic import new_subscription_id
from gos_web_socket.app.server.wamp2.codes import EVENT
from gos_web_socket.app.server.wamp2.meta_lookups import registration_details

if TYPE_CHECKING:
    from gos_web_socket.app.server.wamp2.meta_relay import EventPeers
    from gos_web_socket.app.server.wamp2.patterns import PatternSubscriptions, Reader
    from gos_web_socket.app.server.wamp2.registrations import Procedure, Registration

SESSION_TOPICS = ("wamp.session.on_join", "wamp.session.on_leave")
SUBSCRIPTION_TOPICS = tuple(
    f"wamp.subscription.{name}"
    for name in ("on_create", "on_subscribe", "on_unsubscribe", "on_delete")
)
REGISTRATION_TOPICS = tuple(
    f"wamp.registration.{name}"
    for name in ("on_create", "on_register", "on_unregister", "on_delete")
)
META_TOPICS = frozenset(SESSION_TOPICS + SUBSCRIPTION_TOPICS + REGISTRATION_TOPICS)

Send = Callable[[list[Any]], bool]
Readers = Callable[[str], "Callable[[Reader], bool] | None"]
About = dict[str, str]
"""Whom an event concerns, for deciding who sees it: ``{"kind": "session"}``,
``{"kind": "subscription", "session", "uri", "match"}`` or ``{"kind": "registration", "uri"}``."""


@dataclass(slots=True)
class MetaTopic:
    """One meta topic's subscribers: their connection (who they are) and their wire."""

    id: int = field(default_factory=new_subscription_id)
    members: dict[str, tuple[Reader, Send]] = field(default_factory=dict)


class MetaTopics:
    """The meta topics with subscribers, by URI."""

    __slots__ = ("_topics", "changed")

    def __init__(self) -> None:
        self._topics: dict[str, MetaTopic] = {}
        self.changed: Callable[[list[str]], None] | None = None
        """Told the topics with subscribers when that set changes (the other workers)."""

    def _changed(self) -> None:
        if self.changed is not None:
            self.changed(sorted(self._topics))

    def __bool__(self) -> bool:
        """Any meta topic has a subscriber (else nobody needs an event worked out)."""
        return bool(self._topics)

    def subscribe(self, connection: Reader, send: Send, uri: str) -> int:
        """Add a subscriber (again: nothing changes); the topic's subscription id."""
        topic = self._topics.get(uri)
        if topic is None:
            topic = self._topics[uri] = MetaTopic()
            self._changed()
        topic.members[connection.session_id] = (connection, send)
        return topic.id

    def unsubscribe(self, session_id: str, subscription_id: int) -> bool:
        """Drop one subscription of ``session_id``; False: it holds no such meta one."""
        for uri, topic in list(self._topics.items()):
            if topic.id == subscription_id and session_id in topic.members:
                del topic.members[session_id]
                if not topic.members:
                    del self._topics[uri]
                    self._changed()
                return True
        return False

    def leave(self, session_id: str) -> None:
        emptied = [
            uri
            for uri, topic in self._topics.items()
            if topic.members.pop(session_id, None) is not None and not topic.members
        ]
        for uri in emptied:
            del self._topics[uri]
        if emptied:
            self._changed()

    def publish(self, uri: str, args: list[Any], sees: Callable[[Reader], bool]) -> int:
        """EVENT ``args`` on meta topic ``uri`` to each subscriber ``sees`` allows; how many."""
        topic = self._topics.get(uri)
        if topic is None:
            return 0
        message = [EVENT, topic.id, new_publication_id(), {}, args]
        return sum(
            1 for reader, send in list(topic.members.values()) if sees(reader) and send(message)
        )


class Meta(Protocol):
    """What the events need of the meta API (meta.py ``MetaApi``): who may see what."""

    def sees(self, reader: Reader, uri: str) -> bool: ...

    def sees_procedure(self, connection: Reader, uri: str) -> bool: ...


class MetaEvents:
    """The meta events of this worker's sessions, subscriptions and registrations, sent to
    the meta subscribers here and on the other workers (module docstring)."""

    def __init__(
        self,
        meta: Meta,
        topics: MetaTopics,
        patterns: PatternSubscriptions,
        readers: Readers,
        peers: EventPeers | None,
    ) -> None:
        self.meta = meta
        self.topics = topics
        self.patterns = patterns
        self.readers = readers
        """Who may read a channel's events (the broker: the route's ``subscribe`` rule)."""
        self.peers = peers
        """The other workers (meta_workers.py); None with one worker or between nodes."""
        self.sessions: dict[str, tuple[Reader, dict[str, Any]]] = {}
        """v2 sessions by id: the connection and its ``wamp.session.get`` details."""
        self.created: dict[str, str] = {}
        """When each live exact subscription (channel) was created, ISO 8601."""
        if peers is not None:
            topics.changed = peers.listen
            peers.deliver = self.deliver

    def listened(self) -> bool:
        """Any meta subscriber here or on another worker (else no event is worked out)."""
        return bool(self.topics) or (self.peers is not None and self.peers.listened())

    def emit(self, uri: str, args: list[Any], about: About) -> None:
        """Meta event ``args`` on topic ``uri``, here and to the workers listening to it."""
        self.deliver(uri, args, about)
        if self.peers is not None:
            self.peers.event(uri, args, about)

    def deliver(self, uri: str, args: list[Any], about: About) -> None:
        """Send an event (this worker's or another's) to the subscribers here who see it."""
        if self.topics:
            self.topics.publish(uri, args, self.audience(uri, about))

    def audience(self, uri: str, about: About) -> Callable[[Reader], bool]:
        """Who may see an event of meta topic ``uri`` about ``about``: the topic's rule for
        sessions; for an exact subscription who may subscribe to the channel, for a pattern
        one its subscribers (the session concerned included); for a registration who may call
        the procedure."""
        kind = about.get("kind")
        if kind == "registration":
            return partial(self.meta.sees_procedure, uri=about["uri"])
        if kind != "subscription":
            return partial(self.meta.sees, uri=uri)
        session_id, channel, match = about["session"], about["uri"], about["match"]
        if match != "exact":
            held = self.patterns.lookup(match, channel)
            members = set(held.members) if held is not None else set()
            return lambda reader: reader.session_id == session_id or reader.session_id in members
        readers = self.readers(channel)
        return (lambda reader: False) if readers is None else readers

    def joined(self, connection: Reader, details: dict[str, Any]) -> None:
        """A v2 session was welcomed: ``wamp.session.on_join``."""
        self.sessions[connection.session_id] = (connection, details)
        if self.listened():
            self.emit("wamp.session.on_join", [details], {"kind": "session"})

    def left(self, connection: Reader) -> None:
        """A session ended: ``wamp.session.on_leave`` (session, authid, authrole)."""
        self.topics.leave(connection.session_id)
        entry = self.sessions.pop(connection.session_id, None)
        if entry is None or not self.listened():
            return
        details = entry[1]
        args = [details["session"], details["authid"], details["authrole"]]
        self.emit("wamp.session.on_leave", args, {"kind": "session"})

    def subscribed(
        self, session_id: str, subscription: int, uri: str, match: str, created: bool
    ) -> None:
        """A session joined a subscription: ``on_create`` (when new), ``on_subscribe``."""
        now = datetime.now(UTC).isoformat() if created else ""
        if created and match == "exact":
            self.created[uri] = now
        if not self.listened():  # nobody listens: a subscribe costs nothing more
            return
        about = {"kind": "subscription", "session": session_id, "uri": uri, "match": match}
        session = int(session_id)
        if created:
            details = {"id": subscription, "created": now, "uri": uri, "match": match}
            self.emit("wamp.subscription.on_create", [session, details], about)
        self.emit("wamp.subscription.on_subscribe", [session, subscription], about)

    def unsubscribed(
        self, session_id: str, subscription: int, uri: str, match: str, deleted: bool
    ) -> None:
        """A session left a subscription: ``on_unsubscribe``, ``on_delete`` (when gone)."""
        if deleted and match == "exact":
            self.created.pop(uri, None)
        if not self.listened():
            return
        about = {"kind": "subscription", "session": session_id, "uri": uri, "match": match}
        args = [int(session_id), subscription]
        self.emit("wamp.subscription.on_unsubscribe", args, about)
        if deleted:
            self.emit("wamp.subscription.on_delete", args, about)

    def registered(self, registration: Registration, procedure: Procedure, first: bool) -> None:
        """A callee registered (``RegistrationObserver``): ``on_create`` when it is the
        procedure's ``first``, ``on_register``, under the procedure's stable id."""
        if not self.listened():
            return
        session, about = int(registration.callee.session_id), self._about(registration)
        if first:
            details = registration_details(procedure)
            self.emit("wamp.registration.on_create", [session, details], about)
        self.emit("wamp.registration.on_register", [session, procedure.id], about)

    def unregistered(self, registration: Registration, procedure: Procedure, last: bool) -> None:
        """A callee's registration ended (``RegistrationObserver``): ``on_unregister``,
        ``on_delete`` when it was the procedure's ``last``."""
        if not self.listened():
            return
        args, about = [int(registration.callee.session_id), procedure.id], self._about(registration)
        self.emit("wamp.registration.on_unregister", args, about)
        if last:
            self.emit("wamp.registration.on_delete", args, about)

    @staticmethod
    def _about(registration: Registration) -> About:
        return {"kind": "registration", "uri": registration.uri}
