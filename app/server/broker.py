"""Subscribe, unsubscribe, publish and call, once for WAMP v1 and v2 alike.

Each verb goes route match → topic manager → the user's topic or RPC handler, and comes back as
what the session encodes: a ``Topic`` (subscribed), a ``Result`` (a call's answer), a ``Failure``,
or None (done, nothing to say). Sessions never reach the router, the manager or the handlers
themselves; authorization, history and presence have one place to go here.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Collection, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from gos_web_socket.app.auth.authenticator import Authenticator
from gos_web_socket.app.auth.authorization import RouteRules
from gos_web_socket.app.exceptions import (
    InvalidPayload,
    NotAuthorized,
    ProtocolError,
    ResourceNotFound,
)
from gos_web_socket.app.history import Recovery
from gos_web_socket.app.limits import check_count
from gos_web_socket.app.position import Position
from gos_web_socket.app.presence.base import PRESENCE_PROCEDURE, PRESENCE_RPC, ChannelPresence
from gos_web_socket.app.push import Push, PushMode
from gos_web_socket.app.server.dispatch import RpcDispatcher, TopicDispatcher, rpc_failure
from gos_web_socket.app.server.handlers import SecuredTopic
from gos_web_socket.app.server.manager import TopicManager
from gos_web_socket.app.server.session import Failure, KeywordArguments, Result
from gos_web_socket.app.server.topic import Topic, new_subscription_id
from gos_web_socket.app.server.wamp2.calls import v1_call
from gos_web_socket.app.server.wamp2.dealer import Dealer
from gos_web_socket.app.server.wamp2.meta import MetaApi
from gos_web_socket.app.server.wamp2.patterns import (
    PatternSubscription,
    PatternSubscriptions,
    Reader,
)
from gos_web_socket.app.server.wamp2.registrations import Registration

if TYPE_CHECKING:
    from gos_web_socket.app.presence.service import Presence
    from gos_web_socket.app.router import Router, WampRequest
    from gos_web_socket.app.server.connection import WampConnection
    from gos_web_socket.app.server.wamp2.audience import Listing

logger = logging.getLogger(__name__)

HISTORY_RPC = "gos/history"
"""The server's own RPC: what a subscriber missed since a position (WAMP v1's recovery)."""


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
        self.router = router
        self.manager = manager
        self.topics = topics
        self.rpcs = rpcs
        self.authenticator = authenticator or Authenticator([])
        """Who a v2 session is, at HELLO (v1 connections are authenticated at the handshake)."""
        self.rules = RouteRules.from_router(router) if rules is None else rules
        """Each route's ``options.auth``: who may subscribe, publish, call and register."""
        self.dealer = dealer or Dealer()
        """The procedures clients registered and the calls between clients (WAMP v2 dealer)."""
        self.patterns = manager.patterns = PatternSubscriptions(self, new_subscription_id)
        """WAMP v2 pattern subscriptions; every topic's broadcasts reach them (topic.py)."""
        self.meta = MetaApi(self)
        """The WAMP meta API (``wamp.session.*`` ...) of this worker's sessions."""
        self.presence = presence
        """Who is in the channels of ``presence: true`` routes (app/presence/)."""

    def _refused(self, verb: str, connection: WampConnection, request: WampRequest) -> str | None:
        """Why the route's rule refuses ``verb`` to this connection's user; None: allowed."""
        rule = self.rules.refusal(verb, connection.user, request)
        if rule is None:
            return None
        logger.info(
            "%s on %s refused to connection %s: route %s allows %s",
            verb,
            request.matched,
            connection.session_id,
            request.route_name,
            rule,
            extra={"conn_id": connection.session_id, "route": request.route_name},
        )
        return f"not authorized: {verb} on {request.matched} needs {rule}"

    @staticmethod
    def _not_authorized(uri: str, desc: str) -> Failure:
        return Failure(uri, desc, {"code": 403}, error=NotAuthorized(desc))

    def _allowed(self, verb: str, connection: WampConnection, uri: str) -> WampRequest | Failure:
        """The route of ``uri`` once its ``verb`` rule allowed this connection; else why not
        (no route, or not authorized)."""
        try:
            request = self.router.match(uri)
        except ResourceNotFound as exc:
            return Failure(uri, str(exc), {}, no_route=True, error=exc)
        refused = self._refused(verb, connection, request)
        if refused is not None:
            return self._not_authorized(uri, refused)
        return request

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
        if watched is not None:
            return self._watch(connection, uri, watched, accepted)
        request = self._allowed("subscribe", connection, uri)
        if isinstance(request, Failure):
            return request
        topic = self.manager.subscribe(connection, uri, request)
        if topic is None:
            return connection.subscriptions[uri][0]
        self.meta.subscribed(
            connection.session_id, topic.subscription_id, uri, "exact", len(topic) == 1
        )
        presence = self.presence if request.route.presence else None
        if presence is None:
            done = None if accepted is None else partial(accepted, topic)
            return await self.topics.subscribe(connection, topic, request, done) or topic
        joined = False

        def secured() -> None:  # a member once secure() let it in, before the hook runs
            nonlocal joined
            joined = True
            presence.joined(connection, uri)
            if accepted is not None:
                accepted(topic)

        failure = await self.topics.subscribe(connection, topic, request, secured)
        if failure is None and not joined:  # the route has no topic handler: nothing secures it
            presence.joined(connection, uri)
        return failure or topic

    def _presence_route(
        self, connection: WampConnection, uri: str, channel: str
    ) -> WampRequest | Failure:
        """The route of ``channel`` when it keeps presence and its ``subscribe`` rule allows
        this connection (who may not subscribe may not see who is there); on a route whose
        handler is a ``SecuredTopic``, only for a member of the channel (``secure()`` vetted
        it: the rule alone cannot say who ``secure()`` bars)."""
        request = self._allowed("subscribe", connection, channel)
        if isinstance(request, Failure):
            return dataclasses.replace(request, uri=uri)
        if not request.route.presence:
            desc = f"{channel}: route {request.route_name} has no presence (presence: true)"
            return Failure(uri, desc, {"code": 404})
        secured = isinstance(self.topics.handlers.get(request.route.callback), SecuredTopic)
        assert self.presence is not None
        if secured and not self.presence.is_member(channel, connection.session_id):
            desc = f"{channel}: route {request.route_name} is secured; subscribe to it first"
            return self._not_authorized(uri, f"{desc} (its secure() decides who sees presence)")
        return request

    def _watch(
        self,
        connection: WampConnection,
        uri: str,
        channel: str,
        accepted: Callable[[Topic], None] | None,
    ) -> Topic | Failure:
        """Subscribe to ``gos/presence/<channel>``: the channel's debounced join/leave, after
        an EVENT ``{"channel", "state"}`` with who is there now. No topic hook runs."""
        assert self.presence is not None
        request = self._presence_route(connection, uri, channel)
        if isinstance(request, Failure):
            return request
        topic = self.manager.subscribe(connection, uri, request, plain=True)
        if topic is None:
            return connection.subscriptions[uri][0]
        self.meta.subscribed(
            connection.session_id, topic.subscription_id, uri, "exact", len(topic) == 1
        )
        if accepted is not None:
            accepted(topic)
        members = self.presence.state.members(channel)
        found = ChannelPresence(channel, members, self.presence.stale)
        state = {"channel": channel, "state": found.as_dict(sessions=False)}
        connection.send_event(uri, state)
        return topic

    def subscribe_pattern(
        self, connection: WampConnection, match: str, pattern: str
    ) -> tuple[PatternSubscription, bool]:
        """Join the pattern subscription (match, pattern); and whether it is new. Who may
        read which channel is checked at each event (``readers``).

        Raises:
            LimitExceeded: a new subscription would pass ``server.limits.max_subscriptions``
                (exact and pattern ones count together).
        """
        session_id = connection.session_id
        held = self.patterns.lookup(match, pattern)
        if held is not None and session_id in held.members:
            return held, False
        limit = connection.limits.max_subscriptions
        count = len(connection.subscriptions) + self.patterns.held(session_id)
        check_count("max_subscriptions", count, limit, "subscriptions")
        subscription, created = self.patterns.add(connection, match, pattern)
        self.meta.subscribed(session_id, subscription.id, pattern, match, created)
        return subscription, created

    def unsubscribe_pattern(self, connection: WampConnection, subscription_id: int) -> bool:
        """Leave a pattern subscription; False: the connection holds no such one."""
        gone = self.patterns.remove(connection.session_id, subscription_id)
        if gone is None:
            return False
        subscription, deleted = gone
        match, pattern = subscription.match, subscription.pattern
        self.meta.unsubscribed(connection.session_id, subscription_id, pattern, match, deleted)
        return True

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
        self.meta.unsubscribed(
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
        for subscription, deleted in self.patterns.leave(session_id):
            match, pattern = subscription.match, subscription.pattern
            self.meta.unsubscribed(session_id, subscription.id, pattern, match, deleted)
        for uri in list(connection.subscriptions):
            await self.unsubscribe(connection, uri)
        self.meta.left(connection)

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
        request = self._allowed("publish", connection, uri)
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
        narrow = None if listing is None else partial(self.narrow, uri, listing)
        return await self.topics.publish(
            connection, topic, request, event, exclude, eligible, disclosed, narrow
        )

    def narrow(
        self, uri: str, listing: Listing, exclude: Collection[str], eligible: Collection[str]
    ) -> tuple[list[str], list[str]]:
        """(exclude, eligible) of a broadcast on ``uri`` with ``listing`` applied to the
        channel's subscribers now (audience.py ``Listing.apply``)."""
        excluded = list(exclude)
        return excluded, listing.apply(self.audience(uri), excluded, list(eligible))

    def audience(self, uri: str) -> list[Reader]:
        """Who would get an event of channel ``uri``: its subscribers, then the pattern
        subscribers covering it (before the route rules and the lists)."""
        topic = self.manager.topics.get(uri)
        readers: list[Reader] = [] if topic is None else cast("list[Reader]", list(topic))
        for subscription in self.patterns.matching(uri) if self.patterns.active else ():
            readers.extend(subscription.members.values())
        return readers

    async def call(self, connection: WampConnection, uri: str, params: Any) -> Result | Failure:
        """Run the RPC method the route of ``uri`` names with ``params``.

        ``gos/history`` is the server's own: ``[channel, position|null]`` answers what a
        subscriber of ``channel`` missed since ``position`` (``Recovery.as_dict``); it is how
        WAMP v1 clients recover (v2 clients say ``_recover`` in SUBSCRIBE options instead).
        """
        if uri == HISTORY_RPC:
            return await self._history_call(connection, params)
        if uri in (PRESENCE_RPC, PRESENCE_PROCEDURE) and self.presence is not None:
            return await self._presence_call(connection, uri, params)
        try:
            request = self.router.match(uri)
        except ResourceNotFound as exc:
            return rpc_failure(uri, str(exc), 404, params, exc, no_route=True)
        refused = self._refused("call", connection, request)
        if refused is not None:
            return rpc_failure(uri, refused, 403, params, NotAuthorized(refused))
        registration = self._client_procedure(request)
        if registration is not None:  # a WAMP v1 caller: it awaits the callee's answer
            return await v1_call(self.dealer, connection.session_id, uri, registration, params)
        return await self.rpcs.call(connection, uri, request, params)

    def procedure(self, connection: WampConnection, uri: str) -> Registration | Failure | None:
        """The client registration a CALL of ``uri`` goes to, once the route's ``call`` rule
        allowed it; None: the server's own procedures answer (``call``)."""
        try:
            request = self.router.match(uri)
        except ResourceNotFound:
            return None  # call() answers no_such_procedure
        registration = self._client_procedure(request)
        if registration is None:
            return None
        refused = self._refused("call", connection, request)
        if refused is not None:
            return rpc_failure(uri, refused, 403, None, NotAuthorized(refused))
        return registration

    def _client_procedure(self, request: WampRequest) -> Registration | None:
        """The client registration serving the matched URI; a route of a server RPC handler
        is the server's even when a client's prefix or wildcard pattern covers it."""
        if request.route.callback in self.rpcs.handlers:
            return None
        return self.dealer.procedure(request.matched)

    def discloses(self, uri: str, role: str = "caller") -> bool:
        """Whether a call of ``uri`` may name its caller to the callee (``role`` publisher:
        a PUBLISH its publisher to subscribers): yes, unless the route says
        ``options.disclose_caller: false`` (``disclose_publisher: false``). No route: yes
        (the verb itself fails on it)."""
        try:
            options = self.router.match(uri).route.options
        except ResourceNotFound:
            return True
        return options.get(f"disclose_{role}", True) is not False

    def registrable(self, connection: WampConnection, uri: str) -> Failure | None:
        """Why ``connection`` may not register ``uri``; None: it may.

        No route is an invalid URI; then the route's ``register`` rule (default
        ``authenticated``); then one namespace: a URI whose route names a server RPC handler
        is the server's (code 409, procedure_already_exists), never a client's.
        """
        if self.meta.serves(uri):  # the router's own namespace
            return Failure(uri, f"{uri} is reserved for the meta API", {}, no_route=True)
        request = self._allowed("register", connection, uri)
        if isinstance(request, Failure):
            return request
        callback = request.route.callback
        if callback in self.rpcs.handlers:
            route = request.route_name
            desc = f"{uri} is served by the server's RPC handler {callback!r} (route {route})"
            return Failure(uri, desc, {"code": 409})
        return None

    async def push(self, push: Push) -> None:
        """Hand a routed push to its topic's ``on_push``; every failure is raised.

        The store follows the log with every live push and refill that has a position; a
        read-back is an old push run again for a recovery, not news.
        """
        store = self.manager.history
        if store is not None and push.position is not None and push.mode is not PushMode.READ_BACK:
            store.note(push.position)
        await self.topics.push(self.manager.topic(push.channel), push)

    async def recover(self, topic: Topic, since: Position | None) -> Recovery:
        """What a subscriber of ``topic`` missed after ``since``, for v1 and v2 alike.

        What the channel's history lacks is read back from the stream first (stream mode,
        ``HistoryStore.gap``). A v2 session holds the subscriber meanwhile (``Topic.hold``):
        pushes broadcast in the meantime follow the answer, not precede it.
        """
        store = self.manager.history
        if store is None or topic.history is None:
            return Recovery([], False, None)
        recovery = await store.recover(topic.id, since)
        logger.debug(
            "connection recovers %s since %s: %d publications, complete=%s",
            topic.id,
            since,
            len(recovery.publications),
            recovery.recovered,
        )
        return recovery

    async def _history_call(self, connection: WampConnection, params: Any) -> Result | Failure:
        args = params if isinstance(params, list) else [params]
        if not 1 <= len(args) <= 2 or not isinstance(args[0], str):
            desc = f"{HISTORY_RPC} needs [channel, position|null]"
            return rpc_failure(HISTORY_RPC, desc, 400, params)
        channel = args[0]
        try:
            since = Position.parse(args[1] if len(args) > 1 else None, "position")
        except ProtocolError as exc:
            return rpc_failure(HISTORY_RPC, str(exc), 400, params, exc)
        entry = connection.subscriptions.get(channel)
        if entry is None:
            desc = f"{HISTORY_RPC}: subscribe to {channel} first (what arrives meanwhile is live)"
            return rpc_failure(HISTORY_RPC, desc, 403, params)
        return Result((await self.recover(entry[0], since)).as_dict())

    async def _presence_call(
        self, connection: WampConnection, uri: str, params: Any
    ) -> Result | Failure:
        """``gos/presence`` (v1) and ``gos.presence`` (v2): ``[channel]`` answers who is in it
        (``ChannelPresence.as_dict``), to a connection whose ``subscribe`` rule allows it."""
        presence = self.presence
        assert presence is not None
        args = params if isinstance(params, list) else [params]
        if len(args) != 1 or not isinstance(args[0], str):
            return rpc_failure(uri, f"{uri} needs [channel]", 400, params)
        if not presence.allow_query(connection):
            limits = presence.limits
            desc = (
                f"over presence_queries_per_second {limits.presence_queries_per_second}"
                f" (burst {limits.presence_queries_burst}); try again later"
            )
            return rpc_failure(uri, desc, 429, params)
        request = self._presence_route(connection, uri, args[0])
        if isinstance(request, Failure):
            return rpc_failure(uri, request.desc, request.code or 404, params, request.error)
        return Result((await presence.of(args[0])).as_dict(sessions=False))
