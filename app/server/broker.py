"""Subscribe, unsubscribe, publish and call, once for WAMP v1 and v2 alike.

Each verb goes route match → topic manager → the user's topic or RPC handler, and comes back as
what the session encodes: a ``Topic`` (subscribed), a ``Result`` (a call's answer), a ``Failure``,
or None (done, nothing to say). Sessions never reach the router, the manager or the handlers
themselves; authorization, history and presence have one place to go here.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from app.exceptions import ResourceNotFound
from app.limits import check_count
from app.server.dispatch import RpcDispatcher, TopicDispatcher, rpc_failure
from app.server.manager import TopicManager
from app.server.session import Failure, Result
from app.server.topic import Topic

if TYPE_CHECKING:
    from app.router import Router, WampRequest
    from app.server.connection import WampConnection


class Broker:
    """The verbs of both sessions on one router, topic manager and set of handlers."""

    def __init__(
        self,
        router: Router,
        manager: TopicManager,
        topics: TopicDispatcher,
        rpcs: RpcDispatcher,
    ) -> None:
        self.router = router
        self.manager = manager
        self.topics = topics
        self.rpcs = rpcs

    async def subscribe(
        self,
        connection: WampConnection,
        uri: str,
        accepted: Callable[[Topic], None] | None = None,
    ) -> Topic | Failure:
        """Join ``uri``; ``accepted(topic)`` runs once ``secure()`` passed, before the hook.

        Subscribing again answers the topic joined before and runs nothing.

        Raises:
            LimitExceeded: a new topic would pass ``server.limits.max_subscriptions``.
        """
        if uri not in connection.subscriptions:
            limit = connection.limits.max_subscriptions
            count = len(connection.subscriptions)
            check_count("max_subscriptions", count, limit, "subscriptions")
        try:
            request = self.router.match(uri)
        except ResourceNotFound as exc:
            return Failure(uri, str(exc), {}, no_route=True, error=exc)
        topic = self.manager.subscribe(connection, uri, request)
        if topic is None:
            return connection.subscriptions[uri][0]
        done = None if accepted is None else partial(accepted, topic)
        return await self.topics.subscribe(connection, topic, request, done) or topic

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
        return await self.topics.unsubscribe(connection, entry[0], entry[1], accepted)

    async def leave(self, connection: WampConnection) -> None:
        """Leave every topic of a closed connection (the hooks run; nobody is left to answer)."""
        for uri in list(connection.subscriptions):
            await self.unsubscribe(connection, uri)

    async def publish(
        self,
        connection: WampConnection,
        uri: str,
        event: Any,
        exclude: list[str],
        eligible: list[str],
    ) -> Failure | None:
        """Hand ``event`` to the topic's ``on_publish``; nothing is sent unless it does."""
        try:
            request = self.router.match(uri)
        except ResourceNotFound as exc:
            return Failure(uri, str(exc), {}, no_route=True, error=exc)
        topic = self.manager.topic(uri)
        return await self.topics.publish(connection, topic, request, event, exclude, eligible)

    async def call(self, connection: WampConnection, uri: str, params: Any) -> Result | Failure:
        """Run the RPC method the route of ``uri`` names with ``params``."""
        try:
            request = self.router.match(uri)
        except ResourceNotFound as exc:
            return rpc_failure(uri, str(exc), 404, params, exc, no_route=True)
        return await self.rpcs.call(connection, uri, request, params)

    async def push(self, request: WampRequest, data: Any, provider: str) -> None:
        """Hand a routed push to its topic's ``on_push``; every failure is raised."""
        topic = self.manager.topic(request.matched)
        await self.topics.push(topic, request, data, provider)
