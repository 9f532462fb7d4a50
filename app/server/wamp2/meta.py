"""The WAMP meta API, served by the router itself: ``wamp.session.*``, ``wamp.subscription.*``
and ``wamp.registration.*`` procedures, and their events (meta_events.py).

Who may use it is decided like any verb, by the route rules (docs/auth.md): a meta URI that
a route matches (``pattern: "wamp.session.{name}"``, no callback) takes that route's ``call``
(procedures) or ``subscribe`` (events) rule; without such a route, the ``wamp.session.*``
ones need an **authenticated** user and the others are open to anyone. What a client sees is
then filtered: an exact subscription only when the channel's route lets it subscribe there
(as pattern subscribers are filtered, patterns.py ``Access``), a pattern subscription only
when it holds it, a registration only when the route lets it call the URI. With
``server.workers`` > 1 the procedures answer for the whole node (meta_workers.py); the events
stay this worker's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from gos_web_socket.app.exceptions import MetaRefused, ResourceNotFound
from gos_web_socket.app.server.wamp2.codes import (
    INVALID_ARGUMENT,
    NO_SUCH_SESSION,
    NOT_AUTHORIZED,
)
from gos_web_socket.app.server.wamp2.meta_events import META_TOPICS, MetaTopics, Send
from gos_web_socket.app.server.wamp2.meta_lookups import (
    Broker,
    RegistrationLookups,
    SubscriptionLookups,
    an_id,
    registration_details,
)
from gos_web_socket.app.server.wamp2.meta_workers import NodeMeta

if TYPE_CHECKING:
    from gos_web_socket.app.server.wamp2.patterns import Reader
    from gos_web_socket.app.server.wamp2.registrations import Procedure, Registration

SESSIONS = "wamp.session."


class MetaApi:
    """This worker's sessions, the meta procedures and the meta events."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.topics = MetaTopics()
        self.sessions: dict[str, tuple[Reader, dict[str, Any]]] = {}
        """v2 sessions by id: the connection and its ``wamp.session.get`` details."""
        self.created: dict[str, str] = {}
        """When each live exact subscription (channel) was created, ISO 8601."""
        self._procedures: dict[str, Callable[[Reader, list[Any]], Any]] = {
            "wamp.session.count": self.session_count,
            "wamp.session.list": self.session_list,
            "wamp.session.get": self.session_get,
        }
        self._procedures.update(SubscriptionLookups(self).procedures())
        self._procedures.update(RegistrationLookups(self).procedures())
        broker.dealer.registrations.observers.append(self)
        relay = broker.dealer.relay
        peers = None if relay is None else relay.meta
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

    # -- events -------------------------------------------------------------------------------

    def joined(self, connection: Reader, details: dict[str, Any]) -> None:
        """A v2 session was welcomed: ``wamp.session.on_join``."""
        self.sessions[connection.session_id] = (connection, details)
        uri = "wamp.session.on_join"
        self.topics.publish(uri, [details], partial(self.sees, uri=uri))

    def left(self, connection: Reader) -> None:
        """A session ended: ``wamp.session.on_leave`` (session, authid, authrole)."""
        self.topics.leave(connection.session_id)
        entry = self.sessions.pop(connection.session_id, None)
        if entry is None:
            return
        details = entry[1]
        args = [details["session"], details["authid"], details["authrole"]]
        uri = "wamp.session.on_leave"
        self.topics.publish(uri, args, partial(self.sees, uri=uri))

    def subscribed(
        self, session_id: str, subscription: int, uri: str, match: str, created: bool
    ) -> None:
        """A session joined a subscription: ``on_create`` (when new), ``on_subscribe``."""
        now = datetime.now(UTC).isoformat() if created else ""
        if created and match == "exact":
            self.created[uri] = now
        if not self.topics:  # nobody listens: a subscribe costs nothing more
            return
        sees = self._sees_subscription(session_id, uri, match)
        session = int(session_id)
        if created:
            details = {"id": subscription, "created": now, "uri": uri, "match": match}
            self.topics.publish("wamp.subscription.on_create", [session, details], sees)
        self.topics.publish("wamp.subscription.on_subscribe", [session, subscription], sees)

    def unsubscribed(
        self, session_id: str, subscription: int, uri: str, match: str, deleted: bool
    ) -> None:
        """A session left a subscription: ``on_unsubscribe``, ``on_delete`` (when gone)."""
        if deleted and match == "exact":
            self.created.pop(uri, None)
        if not self.topics:
            return
        sees = self._sees_subscription(session_id, uri, match)
        session = int(session_id)
        self.topics.publish("wamp.subscription.on_unsubscribe", [session, subscription], sees)
        if deleted:
            self.topics.publish("wamp.subscription.on_delete", [session, subscription], sees)

    def _sees_subscription(self, session_id: str, uri: str, match: str) -> Callable[[Reader], bool]:
        if match != "exact":  # a pattern: the session concerned and the pattern's subscribers
            held = self.broker.patterns.lookup(match, uri)
            members = set(held.members) if held is not None else set()
            return lambda reader: reader.session_id == session_id or reader.session_id in members
        readers = self.broker.readers(uri)
        return (lambda reader: False) if readers is None else readers

    def registered(self, registration: Registration, procedure: Procedure, first: bool) -> None:
        """A callee registered (``RegistrationObserver``): ``on_create`` when it is the
        procedure's ``first``, ``on_register``, under the procedure's stable id."""
        if not self.topics:
            return
        session, sees = self._registration_event(registration)
        if first:
            details = registration_details(procedure)
            self.topics.publish("wamp.registration.on_create", [session, details], sees)
        self.topics.publish("wamp.registration.on_register", [session, procedure.id], sees)

    def unregistered(self, registration: Registration, procedure: Procedure, last: bool) -> None:
        """A callee's registration ended (``RegistrationObserver``): ``on_unregister``,
        ``on_delete`` when it was the procedure's ``last``."""
        if not self.topics:
            return
        session, sees = self._registration_event(registration)
        args = [session, procedure.id]
        self.topics.publish("wamp.registration.on_unregister", args, sees)
        if last:
            self.topics.publish("wamp.registration.on_delete", args, sees)

    def _registration_event(
        self, registration: Registration
    ) -> tuple[int, Callable[[Reader], bool]]:
        """The callee's session and who may see an event of the registration."""
        return int(registration.callee.session_id), partial(
            self.sees_procedure, uri=registration.uri
        )

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
