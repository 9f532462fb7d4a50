"""Topic bookkeeping (GOS's TopicManager): the one place that knows who is subscribed to what.

Rules (GOS §4.3, with the #475 timer leak fixed):

- a connection is added to its topic *before* the subscribe hook runs, so the hook counts it;
- subscribing twice, or unsubscribing from a topic not joined, does nothing;
- a connection leaves only the topics it joined; a topic that empties leaves the lookup and
  its timers are cancelled;
- pushes and publishes to a channel nobody joined get a throw-away topic that is never stored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from gos_web_socket.app.server.fanout import Turns
from gos_web_socket.app.server.topic import Patterns, Topic

if TYPE_CHECKING:
    from gos_web_socket.app.history import HistoryStore
    from gos_web_socket.app.router import WampRequest
    from gos_web_socket.app.server.connection import WampConnection


class TopicManager:
    """Live topics by channel, and each connection's subscriptions."""

    def __init__(self, history: HistoryStore | None = None, turns: Turns | None = None) -> None:
        self._topics: dict[str, Topic] = {}
        self.history = history
        """Channel histories (app/history.py); each new topic of a route with one gets its own."""
        self.turns = turns
        """Where topics hand over their frames of a loop turn (live.py); None: at once."""
        self.patterns: Patterns | None = None
        """The pattern subscriptions (wamp2/patterns.py) every topic's broadcasts also reach;
        the broker sets them."""
        self._watchers: list[Callable[[str], None]] = []

    def watch(self, watcher: Callable[[str], None]) -> None:
        """Call ``watcher(channel)`` when a channel gets a topic (its first subscriber, or a
        push while nobody joined): subscribers of topic patterns (app/sse) join it there."""
        self._watchers.append(watcher)

    def _appeared(self, topic_id: str) -> None:
        for watcher in self._watchers:
            watcher(topic_id)

    def _new(self, topic_id: str, plain: bool = False) -> Topic:
        store = self.history
        if store is None or plain:
            return Topic(topic_id, turns=self.turns, patterns=self.patterns)
        return Topic(topic_id, store.channel(topic_id), store, self.turns, self.patterns)

    @property
    def topics(self) -> Mapping[str, Topic]:
        """The live topics: every one has at least one subscriber."""
        return self._topics

    def topic(self, topic_id: str) -> Topic:
        """The live topic for ``topic_id``, or an empty one that is not stored."""
        topic = self._topics.get(topic_id)
        if topic is None and self._watchers:
            self._appeared(topic_id)
            topic = self._topics.get(topic_id)
        return topic or self._new(topic_id)

    def subscribe(
        self, connection: WampConnection, topic_id: str, request: WampRequest, plain: bool = False
    ) -> Topic | None:
        """Add the connection; None when it was already subscribed (no hook must run).
        ``plain``: a topic of the server's own (presence diffs), never with a history."""
        if topic_id in connection.subscriptions:
            return None
        topic = self._topics.get(topic_id)
        appeared = topic is None
        if topic is None:
            topic = self._topics[topic_id] = self._new(topic_id, plain)
        topic.add(connection)
        connection.subscriptions[topic_id] = (topic, request)
        if appeared and self._watchers:
            self._appeared(topic_id)
        return topic

    def unsubscribe(
        self, connection: WampConnection, topic_id: str
    ) -> tuple[Topic, WampRequest] | None:
        """Remove the connection; None when it was not subscribed (no hook must run)."""
        entry = connection.subscriptions.pop(topic_id, None)
        if entry is None:
            return None
        topic = entry[0]
        topic.remove(connection)
        if not len(topic) and self._topics.get(topic_id) is topic:
            del self._topics[topic_id]
            topic.timers.cancel_all()
        return entry

    def clear(self) -> None:
        """Forget every topic and stop their timers (server shutdown)."""
        for topic in self._topics.values():
            topic.timers.cancel_all()
        self._topics.clear()
