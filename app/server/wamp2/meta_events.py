"""The meta API's topics (``wamp.session.on_join`` …): who subscribed to which, and sending
one meta event to the subscribers allowed to see it (meta.py decides who is).

Meta topics are the router's own: they match no route, reach no topic hook and no pattern
subscriber, and clients cannot publish to them. Each has one subscription id (the topics'
counter) while it has subscribers; events are encoded per subscriber (they are rare).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gos_web_socket.app.server.session import new_publication_id
from gos_web_socket.app.server.topic import new_subscription_id
from gos_web_socket.app.server.wamp2.codes import EVENT

if TYPE_CHECKING:
    from gos_web_socket.app.server.wamp2.patterns import Reader

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


@dataclass(slots=True)
class MetaTopic:
    """One meta topic's subscribers: their connection (who they are) and their wire."""

    id: int = field(default_factory=new_subscription_id)
    members: dict[str, tuple[Reader, Send]] = field(default_factory=dict)


class MetaTopics:
    """The meta topics with subscribers, by URI."""

    __slots__ = ("_topics",)

    def __init__(self) -> None:
        self._topics: dict[str, MetaTopic] = {}

    def __bool__(self) -> bool:
        """Any meta topic has a subscriber (else nobody needs an event worked out)."""
        return bool(self._topics)

    def subscribe(self, connection: Reader, send: Send, uri: str) -> int:
        """Add a subscriber (again: nothing changes); the topic's subscription id."""
        topic = self._topics.get(uri)
        if topic is None:
            topic = self._topics[uri] = MetaTopic()
        topic.members[connection.session_id] = (connection, send)
        return topic.id

    def unsubscribe(self, session_id: str, subscription_id: int) -> bool:
        """Drop one subscription of ``session_id``; False: it holds no such meta one."""
        for uri, topic in list(self._topics.items()):
            if topic.id == subscription_id and session_id in topic.members:
                del topic.members[session_id]
                if not topic.members:
                    del self._topics[uri]
                return True
        return False

    def leave(self, session_id: str) -> None:
        for uri, topic in list(self._topics.items()):
            if topic.members.pop(session_id, None) is not None and not topic.members:
                del self._topics[uri]

    def publish(self, uri: str, args: list[Any], sees: Callable[[Reader], bool]) -> int:
        """EVENT ``args`` on meta topic ``uri`` to each subscriber ``sees`` allows; how many."""
        topic = self._topics.get(uri)
        if topic is None:
            return 0
        message = [EVENT, topic.id, new_publication_id(), {}, args]
        return sum(
            1 for reader, send in list(topic.members.values()) if sees(reader) and send(message)
        )
