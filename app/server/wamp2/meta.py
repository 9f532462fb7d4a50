"""The WAMP meta API, served by the router itself: ``wamp.session.*``, ``wamp.subscription.*``
and ``wamp.registration.*`` procedures, and their events (meta_events.py).

Who may use it is decided like any verb, by the route rules (docs/auth.md): a meta URI that
a route matches (``pattern: "wamp.session.{name}"``, no callback) takes that route's ``call``
(procedures) or ``subscribe`` (events) rule; without such a route, the ``wamp.session.*``
ones need an **authenticated** user and the others are open to anyone. What a client sees is
then filtered: an exact subscription only when the channel's route lets it subscribe there
(as pattern subscribers are filtered, patterns.py ``Access``), a pattern subscription only
when it holds it, a registration only when the route lets it call the URI. With
``server.workers`` > 1 the procedures answer for the whole node (meta_workers.py), and the
events reach the subscribers of every worker (meta_events.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gos_web_socket.app.exceptions import MetaRefused, ResourceNotFound
from gos_web_socket.app.server.wamp2.codes import (
    INVALID_ARGUMENT,
    NO_SUCH_SESSION,
    NOT_AUTHORIZED,
)
from gos_web_socket.app.server.wamp2.meta_events import (
    META_TOPICS,
    MetaEvents,
    MetaTopics,
    Send,
)
from gos_web_socket.app.server.wamp2.meta_lookups import (
    Broker,
    RegistrationLookups,
    SubscriptionLookups,
    an_id,
)
from gos_web_socket.app.server.wamp2.meta_workers import NodeMeta

if TYPE_CHECKING:
    from gos_web_socket.app.server.wamp2.patterns import Reader

SESSIONS = "wamp.session."


class MetaApi:
    """This worker's sessions, the meta procedures and the meta events."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.topics = MetaTopics()
        relay = broker.dealer.relay
        peers = None if relay is None else relay.meta
        events = None if peers is None else peers.events
        self.events = MetaEvents(self, self.topics, broker.patterns, broker.readers, events)
        """The meta events, sent to the subscribers of every worker (meta_events.py)."""
        self.sessions = self.events.sessions
        """v2 sessions by id: the connection and its ``wamp.session.get`` details."""
        self.created = self.events.created
        """When each live exact subscription (channel) was created, ISO 8601."""
        self._procedures: dict[str, Callable[[Reader, list[Any]], Any]] = {
            "wamp.session.count": self.session_count,
            "wamp.session.list": self.session_list,
            "wamp.session.get": self.session_get,
        }
        self._procedures.update(SubscriptionLookups(self).procedures())
        self._procedures.update(RegistrationLookups(self).procedures())
        broker.dealer.registrations.observers.append(self.events)
        self.node = None if peers is None else NodeMeta(self, peers)
        """The procedures across the workers of this node, with several (meta_workers.py)."""

    # -- who may ------------------------------------------------------------------------------

    def permitted(self, connection: Reader, verb: str, uri: str) -> bool:
        """The route of meta URI ``uri`` allows ``verb``; without one, the defaults above.
        A refusal is counted (``authz_refused``): the client's CALL or SUBSCRIBE fails."""
        try:
            request = self.broker.router.match(uri)
        except ResourceNotFound:
            return not (uri.startswith(SESSIONS) and connection.user.is_anonymous)
        return self.broker.rules.refusal(verb, connection.user, request) is None

    def sees(self, reader: Reader, uri: str) -> bool:
        """Whether a subscriber of meta topic ``uri`` may get its events now (``permitted``
        for ``subscribe``, counting nothing: hiding an event refuses no verb)."""
        try:
            request = self.broker.router.match(uri)
        except ResourceNotFound:
            return not (uri.startswith(SESSIONS) and reader.user.is_anonymous)
        return self.broker.rules.allows("subscribe", reader.user, request)

    def sees_channel(self, connection: Reader, channel: str) -> bool:
        readers = self.broker.readers(channel)
        return readers is not None and readers(connection)

    def channel_subscribers(self, connection: Reader, uri: str) -> list[int]:
        """The subscribers of exact channel ``uri`` on this worker, when ``connection`` may
        see it (else none)."""
        topic = self.broker.manager.topics.get(uri)
        if topic is None or not self.sees_channel(connection, uri):
            return []
        return [int(subscriber.session_id) for subscriber in topic]

    def sees_procedure(self, connection: Reader, uri: str) -> bool:
        try:
            request = self.broker.router.match(uri)
        except ResourceNotFound:
            return False
        return self.broker.rules.allows("call", connection.user, request)

    # -- calls and subscriptions --------------------------------------------------------------

    @staticmethod
    def serves(uri: str) -> bool:
        """Whether ``uri`` is one of the router's meta procedures or topics."""
        return uri.startswith(("wamp.session.", "wamp.subscription.", "wamp.registration."))

    def call(self, connection: Reader, uri: str, args: list[Any]) -> Any:
        """Run meta procedure ``uri`` on this worker; its one result.

        Raises:
            MetaRefused: unknown procedure, not allowed, bad arguments, unknown id.
        """
        procedure = self._procedures.get(uri)
        if procedure is None:
            raise MetaRefused("wamp.error.no_such_procedure", f"no meta procedure {uri}")
        if not self.permitted(connection, "call", uri):
            raise MetaRefused(NOT_AUTHORIZED, f"not authorized: call on {uri}")
        return procedure(connection, args)

    async def ask(self, connection: Reader, uri: str, args: list[Any]) -> Any:
        """Run meta procedure ``uri`` for the whole node (meta_workers.py ``NodeMeta``);
        ``call`` with one worker.

        Raises:
            MetaRefused: as ``call``; an unknown id when no worker knows it.
        """
        if self.node is None:
            return self.call(connection, uri, args)
        return await self.node.ask(connection, uri, args)

    def subscribe(self, connection: Reader, send: Send, uri: str) -> int:
        """Subscribe to meta topic ``uri``; its subscription id.

        Raises:
            MetaRefused: not a meta topic, or not allowed.
        """
        if uri not in META_TOPICS:
            raise MetaRefused("wamp.error.invalid_uri", f"no meta topic {uri}")
        if not self.permitted(connection, "subscribe", uri):
            raise MetaRefused(NOT_AUTHORIZED, f"not authorized: subscribe on {uri}")
        return self.topics.subscribe(connection, send, uri)

    # -- wamp.session.* -----------------------------------------------------------------------

    def _sessions(self, args: list[Any]) -> list[dict[str, Any]]:
        roles = args[0] if args else None
        if roles is not None and not (
            isinstance(roles, list) and all(isinstance(r, str) for r in roles)
        ):
            raise MetaRefused(INVALID_ARGUMENT, "filter_authroles must be a list of strings")
        found = [details for _, details in self.sessions.values()]
        return found if roles is None else [d for d in found if d["authrole"] in roles]

    def session_count(self, connection: Reader, args: list[Any]) -> int:
        return len(self._sessions(args))

    def session_list(self, connection: Reader, args: list[Any]) -> list[int]:
        return [details["session"] for details in self._sessions(args)]

    def session_get(self, connection: Reader, args: list[Any]) -> dict[str, Any]:
        entry = self.sessions.get(str(an_id(args)))
        if entry is None:
            raise MetaRefused(NO_SUCH_SESSION, f"no session {args[0]}")
        return entry[1]
