"""SUBSCRIBE and UNSUBSCRIBE of pattern subscriptions (``match: prefix | wildcard``), and who
an event of a channel would reach through them (for the publisher's black/white lists).

The subscriptions themselves are patterns.py's; this is the verbs' side: the subscription
budget (exact and pattern ones count together) and the meta events.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, cast

from gos_web_socket.app.limits import check_count

if TYPE_CHECKING:
    from gos_web_socket.app.server.connection import WampConnection
    from gos_web_socket.app.server.manager import TopicManager
    from gos_web_socket.app.server.wamp2.audience import Listing
    from gos_web_socket.app.server.wamp2.meta import MetaApi
    from gos_web_socket.app.server.wamp2.patterns import (
        PatternSubscription,
        PatternSubscriptions,
        Reader,
    )


class PatternVerbs:
    """The pattern subscriptions' verbs on one process's ``PatternSubscriptions``."""

    def __init__(self, patterns: PatternSubscriptions, manager: TopicManager, meta: MetaApi):
        self.patterns = patterns
        self.manager = manager
        self.meta = meta

    def subscribe(
        self, connection: WampConnection, match: str, pattern: str
    ) -> tuple[PatternSubscription, bool]:
        """Join the pattern subscription (match, pattern); and whether it is new. Who may
        read which channel is checked at each event (``Broker.readers``).

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
        self.meta.events.subscribed(session_id, subscription.id, pattern, match, created)
        return subscription, created

    def unsubscribe(self, connection: WampConnection, subscription_id: int) -> bool:
        """Leave a pattern subscription; False: the connection holds no such one."""
        gone = self.patterns.remove(connection.session_id, subscription_id)
        if gone is None:
            return False
        subscription, deleted = gone
        match, pattern = subscription.match, subscription.pattern
        self.meta.events.unsubscribed(
            connection.session_id, subscription_id, pattern, match, deleted
        )
        return True

    def leave(self, session_id: str) -> None:
        """Leave every pattern subscription of a closed session."""
        for subscription, deleted in self.patterns.leave(session_id):
            match, pattern = subscription.match, subscription.pattern
            self.meta.events.unsubscribed(session_id, subscription.id, pattern, match, deleted)

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
