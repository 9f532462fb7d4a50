"""An SSE subscriber: a taken HTTP request kept open as one more kind of session.

The connection stays the server's ``WampConnection`` (counted, registered, cut off when it
does not read, closed on stop like a WebSocket client); its session is an ``SseSession``, whose
wire format frames updates as Server-Sent Events. Subscribing goes through the ``Broker`` like
a WAMP SUBSCRIBE (route match, the route's ``subscribe`` rule, the topic's hooks); a reconnect
with ``Last-Event-ID`` is a v2 ``_recover``: held, replayed from history, released.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from gos_web_socket.app.history import Recovery
from gos_web_socket.app.position import Position, Publication
from gos_web_socket.app.server.session import Failure, Result, Session, new_publication_id
from gos_web_socket.app.sse.wire import COMMENT, SseFormat

RECENT_IDS = 256
"""Event ids an SSE subscriber remembers to write each update once."""

if TYPE_CHECKING:
    from gos_web_socket.app.server.broker import Broker
    from gos_web_socket.app.server.connection import WampConnection
    from gos_web_socket.app.server.topic import Topic
    from gos_web_socket.app.sse.selectors import Selectors


class SseSession(Session[None]):
    """The session of an SSE subscriber: it only receives (the request was its only input)."""

    def __init__(self, connection: WampConnection, wire: SseFormat) -> None:
        self.connection = connection
        self.wire_format = wire
        self.recent = RecentIds()
        connection.filter_writes(self.recent.fresh)

    def opened(self) -> None:
        """Nothing to say: the headers went out with ``open_stream``."""

    def receive(self, payload: bytes, is_binary: bool) -> None:
        """Never called: a taken connection is not read."""

    def closing(self, code: int, reason: str) -> None:
        """SSE has no close message: the response ends."""

    def event(self, topic: str, payload: Any) -> bool:
        frame = self.wire_format.event_frame(topic, 0, new_publication_id(), payload)
        return bool(frame) and self.connection.write_frame(frame)

    def result(self, request: None, result: Result) -> None:
        """SSE subscribers make no calls."""

    def error(self, request: None, failure: Failure) -> None:
        """SSE subscribers make no requests to answer."""

    def heartbeat(self) -> None:
        """A comment line (``mercure.heartbeat``): proxies keep the idle response open."""
        self.connection.write_frame(COMMENT)


class RecentIds:
    """The ids of the last ``size`` events one SSE subscriber got: an update to several
    topics reaches it through each channel it holds, and is written once."""

    __slots__ = ("size", "_seen", "_order")

    def __init__(self, size: int = RECENT_IDS) -> None:
        self.size = size
        self._seen: set[bytes] = set()
        self._order: deque[bytes] = deque()

    def fresh(self, frame: bytes) -> bytes:
        """``frame``'s events less those whose id was written before (comments are kept)."""
        blocks = frame.split(b"\n\n")
        kept = []
        for block in blocks[:-1]:
            event_id = id_of(block)
            if event_id is not None:
                if event_id in self._seen:
                    continue
                self.add(event_id)
            kept.append(block + b"\n\n")
        kept.append(blocks[-1])
        return b"".join(kept)

    def add(self, event_id: bytes) -> None:
        self._seen.add(event_id)
        self._order.append(event_id)
        if len(self._order) > self.size:
            self._seen.discard(self._order.popleft())


def id_of(block: bytes) -> bytes | None:
    """The ``id:`` of one SSE event block (it follows ``event:`` and ``retry:`` if any)."""
    if block.startswith(b"id: "):
        start = 4
    else:
        found = block.find(b"\nid: ")
        if found < 0:
            return None
        start = found + 5
    end = block.find(b"\n", start)
    return block[start : end if end >= 0 else None]


def merged(recoveries: Iterable[Recovery]) -> tuple[list[Publication], bool]:
    """The publications of several channels' recoveries in log order, each position once (an
    update published to several topics is one event), and whether every one was complete."""
    seen: dict[Position, Publication] = {}
    complete = True
    for recovery in recoveries:
        complete = complete and recovery.recovered
        for publication in recovery.publications:
            seen.setdefault(publication.position, publication)
    ordered = sorted(seen.values(), key=lambda p: (p.position.epoch, p.position.offset))
    return ordered, complete


async def replay(
    broker: Broker, connection: WampConnection, topics: list[Topic], since: Position
) -> tuple[list[bytes], bool, Position | None]:
    """The frames a held subscriber of ``topics`` missed after ``since``, whether that is
    all of it, and the last position replayed (None: nothing)."""
    recoveries = [await broker.history.recover(topic, since) for topic in topics]
    publications, complete = merged(recoveries)
    wire = connection.wire_format
    channel = topics[0].id if topics else ""
    frames = []
    for publication in publications:
        frame = wire.event_frame(
            channel, 0, new_publication_id(), publication.payload, publication.position
        )
        if frame:
            frames.append(frame)
    last = publications[-1].position if publications else None
    return frames, complete, last


def release(connection: WampConnection, topics: list[Topic], reached: Position | None) -> None:
    """Write what was broadcast while the subscriber was held, less what the replay had."""
    written: set[Position] = set()
    for topic in topics:
        meanwhile = topic.release(connection) or []
        for position, frame in meanwhile:
            if position is not None and (
                position in written
                or (
                    reached is not None
                    and position.epoch == reached.epoch
                    and position.offset <= reached.offset
                )
            ):
                continue
            if position is not None:
                written.add(position)
            connection.write_frame(frame)


class WideSubscribers:
    """Subscribers with ``*``, templates or patterns: they join every channel they cover, the
    live ones when they subscribe and new ones as they appear (``TopicManager.watch``), with
    the route's ``subscribe`` rule checked, no subscribe hook run, no ``SecuredTopic`` channel
    and at most ``max_subscriptions`` channels per subscriber."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.subscribers: dict[str, tuple[WampConnection, Selectors]] = {}

    def add(self, connection: WampConnection, selectors: Selectors) -> None:
        """Join every live channel ``selectors`` cover, and the new ones as they appear."""
        self.prune()
        self.subscribers[connection.session_id] = connection, selectors
        for channel in list(self.broker.manager.topics):
            if selectors.matches(channel):
                self.join(connection, channel)

    def prune(self) -> None:
        """Forget subscribers whose connection is gone."""
        for session_id, (connection, _) in list(self.subscribers.items()):
            if connection.closed or connection.lost:
                del self.subscribers[session_id]

    def joins(self, channel: str) -> None:
        """The manager's watcher: a channel got a topic; the subscribers covering it join."""
        if not self.subscribers:
            return
        self.prune()
        for connection, selectors in list(self.subscribers.values()):
            if selectors.matches(channel):
                self.join(connection, channel)

    def join(self, connection: WampConnection, channel: str) -> None:
        """Join ``channel`` as WAMP v2 pattern subscribers may read it (``Broker.readers``):
        never a ``SecuredTopic``'s (its ``secure()`` vets one subscriber's request, which a
        wide selector never makes), only where the route's rule allows the user, and not past
        ``server.limits.max_subscriptions`` (the channels beyond the cap are skipped)."""
        if channel in connection.subscriptions:
            return
        if len(connection.subscriptions) >= connection.limits.max_subscriptions:
            return
        readers = self.broker.readers(channel)
        if readers is None or not readers(connection):
            return
        request = self.broker.router.match(channel)
        self.broker.manager.subscribe(connection, channel, request)
