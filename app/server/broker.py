"""Subscribe, unsubscribe, publish and call, once for WAMP v1 and v2 alike.

Each verb goes route match → topic manager → the user's topic or RPC handler, and comes back as
what the session encodes: a ``Topic`` (subscribed), a ``Result`` (a call's answer), a ``Failure``,
or None (done, nothing to say). Sessions never reach the router, the manager or the handlers
themselves; authorization, history and presence have one place to go here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from gos_web_socket.app.auth.authenticator import Authenticator
from gos_web_socket.app.auth.authorization import RouteRules
from gos_web_socket.app.exceptions import (
    InvalidPayload,
    NotAuthorized,
    ResourceNotFound,
)
from gos_web_socket.app.limits import check_count
from gos_web_socket.app.presence.base import PRESENCE_PROCEDURE, PRESENCE_RPC
from gos_web_socket.app.push import Push
from gos_web_socket.app.server.dispatch import RpcDispatcher, TopicDispatcher, rpc_failure
from gos_web_socket.app.server.handlers import SecuredTopic
from gos_web_socket.app.server.history_verbs import HISTORY_RPC, HistoryVerbs
from gos_web_socket.app.server.manager import TopicManager
from gos_web_socket.app.server.presence_verbs import PresenceVerbs
from gos_web_socket.app.server.session import Failure, KeywordArguments, Result
from gos_web_socket.app.server.topic import Topic, new_subscription_id
from gos_web_socket.app.server.verb_gate import VerbGate
from gos_web_socket.app.server.wamp2.calls import v1_call
from gos_web_socket.app.server.wamp2.dealer import Dealer
from gos_web_socket.app.server.wamp2.meta import MetaApi
from gos_web_socket.app.server.wamp2.pattern_verbs import PatternVerbs
from gos_web_socket.app.server.wamp2.patterns import (
    PatternSubscriptions,
    Reader,
)
from gos_web_socket.app.server.wamp2.procedures import Procedures

if TYPE_CHECKING:
    from gos_web_socket.app.presence.service import Presence
    from gos_web_socket.app.router import Router
    from gos_web_socket.app.server.connection import WampConnection
    from gos_web_socket.app.server.wamp2.audience import Listing


class Broker:
    """The verbs of both sessions on one router, topic manager and set of handlers."""

    def __init__(
        self,
        router: Router,
        manager: TopicManager,
        topics: TopicDispatcher,
        rpcs: RpcDispatcher,
        authenticator: Authenticator | None = None,
        rules: RouteRules | None = None,
        dealer: Dealer | None = None,
        presence: Presence | None = None,
    ) -> None:
        self.gate = VerbGate(router, rules)
        """Each route's ``options.auth``: who may subscribe, publish, call and register."""
        self.router = router
        self.rules = self.gate.rules
        self.manager = manager
        self.topics = topics
        self.rpcs = rpcs
        self.authenticator = authenticator or Authenticator([])
        """Who a v2 session is, at HELLO (v1 connections are authenticated at the handshake)."""
        self.dealer = dealer or Dealer()
        """The procedures clients registered and the calls between clients (WAMP v2 dealer)."""
        self.procedures = Procedures(self.gate, rpcs, self.dealer)
        """Which procedure a call reaches; who may register which URI."""
        self.patterns = manager.patterns = PatternSubscriptions(self, new_subscription_id)
        """WAMP v2 pattern subscriptions; every topic's broadcasts reach them (topic.py)."""
        self.meta = MetaApi(self)
        """The WAMP meta API (``wamp.session.*`` ...) of this worker's sessions."""
        self.pattern_verbs = PatternVerbs(self.patterns, manager, self.meta)
        """SUBSCRIBE/UNSUBSCRIBE of pattern subscriptions."""
        self.presence = presence
        """Who is in the channels of ``presence: true`` routes (app/presence/)."""
        self.history = HistoryVerbs(manager)
        """Recoveries (v2 ``_recover``, SSE, ``gos/history``) and the store following pushes."""
        self.presence_verbs = (
            None
            if presence is None
            else PresenceVerbs(presence, self.gate, manager, topics, self.meta)
        )
        """Presence watchers and queries (``gos/presence``)."""

    async def subscribe(
        self,
        connection: WampConnection,
        uri: str,
        accepted: Callable[[Topic], None] | None = None,
    ) -> Topic | Failure:
        """Join ``uri``; ``accepted(topic)`` runs once ``secure()`` passed, before the hook.

        Subscribing again answers the topic joined before and runs nothing.

        Raises:
            LimitExceeded: a new topic would pass ``server.limits.max_subscriptions``
                (exact and pattern ones count together).
        """
        if uri not in connection.subscriptions:
            limit = connection.limits.max_subscriptions
            count = len(connection.subscriptions) + self.patterns.held(connection.session_id)
            check_count("max_subscriptions", count, limit, "subscriptions")
        watched = None if self.presence is None else self.presence.watched(uri)
        if watched is not None and self.presence_verbs is not None:
            return self.presence_verbs.watch(connection, uri, watched, accepted)
        request = self.gate.allowed("subscribe", connection, uri)
        if isinstance(request, Failure):
            return request
        topic = self.manager.subscribe(connection, uri, request)
        if topic is None:
            return connection.subscriptions[uri][0]
        self.meta.events.subscribed(
            connection.session_id, topic.subscription_id, uri, "exact", len(topic) == 1
        )
        presence = self.presence_verbs if request.route.presence else None
        if presence is not None:
            return await presence.subscribe(connection, uri, topic, request, accepted)
        done = None if accepted is None else partial(accepted, topic)
        return await self.topics.subscribe(connection, topic, request, done) or topic

    def readers(self, uri: str) -> Callable[[Reader], bool] | None:
        """Which pattern subscribers may get an event of channel ``uri``: those the route's
        ``subscribe`` rule allows; nobody on a channel without a route or whose handler is a
        ``SecuredTopic`` (its ``secure()`` vets one client's SUBSCRIBE, not each event)."""
        try:
            request = self.router.match(uri)
        except ResourceNotFound:
            return None
        if isinstance(self.topics.handlers.get(request.route.callback), SecuredTopic):
            return None
        rule, attributes = self.rules.rule("subscribe", request.route_name), request.attributes
        return lambda reader: rule.allows(reader.user, attributes)

    async def unsubscribe(
        self,
        connection: WampConnection,
        uri: str,
        accepted: Callable[[], None] | None = None,
    ) -> Failure | None:
        """Leave ``uri``; leaving a topic not joined does nothing."""
        entry = self.manager.unsubscribe(connection, uri)
        if entry is None:
            return None
        topic = entry[0]
        self.meta.events.unsubscribed(
            connection.session_id, topic.subscription_id, uri, "exact", not len(topic)
        )
        if self.presence is not None and entry[1].route.presence:
            if self.presence.watched(uri) is not None and uri != entry[1].matched:
                if accepted is not None:  # a watcher of join/leave: no topic hook
                    accepted()
                return None
            self.presence.left(connection, uri)
        return await self.topics.unsubscribe(connection, entry[0], entry[1], accepted)

    async def leave(self, connection: WampConnection) -> None:
        """Leave every topic of a closed connection (the hooks run; nobody is left to answer);
        its registrations and calls in flight end first (dealer.py)."""
        session_id = connection.session_id
        self.dealer.leave(session_id)
        self.pattern_verbs.leave(session_id)
        for uri in list(connection.subscriptions):
            await self.unsubscribe(connection, uri)
        self.meta.events.left(connection)

    async def publish(
        self,
        connection: WampConnection,
        uri: str,
        event: Any,
        exclude: list[str],
        eligible: list[str],
        disclosed: Mapping[str, Any] | None = None,
        listing: Listing | None = None,
    ) -> Failure | None:
        """Hand ``event`` to the topic's ``on_publish``; nothing is sent unless it does.
        ``disclosed``: the EVENT details naming the publisher (v2 ``disclose_me``);
        ``listing``: the authid/authrole lists, applied to what the hook broadcasts on the
        topic when it is sent (who subscribed meanwhile included).

        On a route with a payload model (``payload:``) the event must fit it, as a push
        must: else the publish fails with code 400 (v2 ``invalid_argument``) and the hook
        gets nothing; one that fits goes on as the model's JSON."""
        request = self.gate.allowed("publish", connection, uri)
        if isinstance(request, Failure):
            return request
        if request.route.payload is not None:
            try:
                checked = request.route.validate_payload(event, request.route_name)
            except InvalidPayload as exc:
                return Failure(uri, str(exc), {"code": 400}, error=exc)
            keywords = isinstance(event, KeywordArguments) and isinstance(checked, dict)
            event = KeywordArguments(checked) if keywords else checked
        topic = self.manager.topic(uri)
        narrow = None if listing is None else partial(self.pattern_verbs.narrow, uri, listing)
        return await self.topics.publish(
            connection, topic, request, event, exclude, eligible, disclosed, narrow
        )

    async def call(self, connection: WampConnection, uri: str, params: Any) -> Result | Failure:
        """Run the RPC method the route of ``uri`` names with ``params``.

        ``gos/history`` is the server's own: ``[channel, position|null]`` answers what a
        subscriber of ``channel`` missed since ``position`` (``Recovery.as_dict``); it is how
        WAMP v1 clients recover (v2 clients say ``_recover`` in SUBSCRIBE options instead).
        """
        if uri == HISTORY_RPC:
            return await self.history.call(connection, params)
        if uri in (PRESENCE_RPC, PRESENCE_PROCEDURE) and self.presence_verbs is not None:
            return await self.presence_verbs.call(connection, uri, params)
        try:
            request = self.router.match(uri)
        except ResourceNotFound as exc:
            return rpc_failure(uri, str(exc), 404, params, exc, no_route=True)
        refused = self.gate.refused("call", connection, request)
        if refused is not None:
            return rpc_failure(uri, refused, 403, params, NotAuthorized(refused))
        registration = self.procedures.client_procedure(request)
        if registration is not None:  # a WAMP v1 caller: it awaits the callee's answer
            return await v1_call(
                self.dealer.invocations, connection.session_id, uri, registration, params
            )
        return await self.rpcs.call(connection, uri, request, params)

    async def push(self, push: Push) -> None:
        """Hand a routed push to its topic's ``on_push``, after the history store noted its
        position (``HistoryVerbs.note``); every failure is raised."""
        self.history.note(push)
        await self.topics.push(self.manager.topic(push.channel), push)
