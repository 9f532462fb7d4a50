"""Live topics (a channel and its subscribers) and the base classes users write topics with.

``Topic`` is the server's object for one channel string; ``TopicHandler`` is the user's code
behind a route callback, shared by every channel the route matches.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator
from typing import TYPE_CHECKING, Any

from app.message import dumps
from app.server.timers import PeriodicTimers
from app.server.wamp2 import new_publication_id

if TYPE_CHECKING:
    from app.router import WampRequest
    from app.server.protocol import WampConnection

EVENT = 8

_subscription_ids = itertools.count(1)
"""WAMP v2 subscription ids: router scope, one per live topic."""

FrameBuilder = Callable[[bytes], bytes]
"""Turns a text payload into the complete wire bytes of one unmasked WebSocket frame."""


class Topic:
    """One channel and the connections subscribed to it, by session id.

    ``broadcast`` encodes and frames the EVENT once per wire format (WAMP v1, v2 JSON, v2
    msgpack), then queues the same bytes for every open subscriber of that format; each client's
    frames of one loop turn leave in one ``transport.write``. ``subscription_id`` is the v2 id
    of this topic, shared by all its v2 subscribers so that they can share one frame.
    """

    __slots__ = (
        "id",
        "timers",
        "timers_registered",
        "subscription_id",
        "_subscribers",
        "_frame",
        "_v2",
    )

    def __init__(self, topic_id: str, frame: FrameBuilder) -> None:
        self.id = topic_id
        self.timers = PeriodicTimers(f"topic {topic_id}")
        self.timers_registered = False
        self.subscription_id = next(_subscription_ids)
        self._subscribers: dict[str, WampConnection] = {}
        self._frame = frame
        self._v2: set[str] = set()
        """Session ids of the subscribers speaking WAMP v2."""

    def broadcast(
        self,
        payload: Any,
        exclude: Collection[str] = (),
        eligible: Collection[str] = (),
    ) -> int:
        """Send EVENT ``[8, id, payload]`` to subscribers; returns how many were written to.

        Session ids in ``exclude`` are skipped; a non-empty ``eligible`` limits the
        recipients to those ids.
        """
        subscribers = self._subscribers
        if not subscribers:
            return 0
        if eligible:
            targets = [subscribers[s] for s in set(eligible) if s in subscribers]
        else:
            targets = list(subscribers.values())
        skip = set(exclude) if exclude else None
        if self._v2:
            return self._broadcast_mixed(targets, payload, skip)
        frame = self._frame(dumps([EVENT, self.id, payload]).encode())
        sent = 0
        for connection in targets:
            if skip is not None and connection.session_id in skip:
                continue
            if connection.write_frame(frame):
                sent += 1
        return sent

    def _broadcast_mixed(
        self, targets: list[WampConnection], payload: Any, skip: set[str] | None
    ) -> int:
        """``broadcast`` with v2 subscribers: one frame per serializer.

        Every frame is built before the first write, so a payload one serializer cannot carry
        (msgpack bytes for a JSON client) raises before anyone got the event: all or nothing.
        """
        publication = new_publication_id()
        recipients = [c for c in targets if skip is None or c.session_id not in skip]
        frames: dict[object, bytes] = {}
        for serializer in dict.fromkeys(c.serializer for c in recipients):
            if serializer is None:
                frames[None] = self._frame(dumps([EVENT, self.id, payload]).encode())
            else:
                frames[serializer] = serializer.event_frame(
                    self.subscription_id, publication, payload
                )
        sent = 0
        for connection in recipients:
            if connection.write_frame(frames[connection.serializer]):
                sent += 1
        return sent

    def add(self, connection: WampConnection) -> None:
        self._subscribers[connection.session_id] = connection
        if connection.serializer is not None:
            self._v2.add(connection.session_id)

    def remove(self, connection: WampConnection) -> None:
        self._subscribers.pop(connection.session_id, None)
        self._v2.discard(connection.session_id)

    def has(self, connection: WampConnection) -> bool:
        return self._subscribers.get(connection.session_id) is connection

    def __len__(self) -> int:
        return len(self._subscribers)

    def __iter__(self) -> Iterator[WampConnection]:
        return iter(list(self._subscribers.values()))

    def __repr__(self) -> str:
        return f"Topic({self.id!r}, subscribers={len(self._subscribers)})"


class TopicHandler:
    """Base of user topics. ``name`` must equal the route callback.

    The hooks run after the server's bookkeeping: in ``on_subscribe`` the connection is
    already counted in ``len(topic)``, in ``on_unsubscribe`` it is already gone. Default
    hooks do nothing, so a topic only writes what it needs.
    """

    name: str = ""

    async def on_subscribe(
        self, connection: WampConnection, topic: Topic, request: WampRequest
    ) -> None:
        """A client joined ``topic``."""

    async def on_unsubscribe(
        self, connection: WampConnection, topic: Topic, request: WampRequest
    ) -> None:
        """A client left ``topic`` (by UNSUBSCRIBE or by closing)."""

    async def on_publish(
        self,
        connection: WampConnection,
        topic: Topic,
        request: WampRequest,
        event: Any,
        exclude: list[str],
        eligible: list[str],
    ) -> None:
        """A client (or the WAMP pusher) published ``event``; nothing is sent unless you do."""

    def register_periodic_timers(self, topic: Topic) -> None:
        """Add timers with ``topic.timers.add(name, seconds, callback)``.

        Called once per live topic, when it has its first subscriber; the timers are
        cancelled when the topic empties (and registered again if it fills up later).
        """


class PushableTopic(TopicHandler, ABC):
    """A topic that accepts pushes from push handlers (AMQP, ZeroMQ, custom)."""

    @abstractmethod
    async def on_push(self, topic: Topic, request: WampRequest, data: Any, provider: str) -> None:
        """``data`` was pushed through ``provider``; typically ``topic.broadcast(data)``."""


class SecuredTopic(TopicHandler):
    """A topic that vets every verb before it reaches the hooks."""

    async def secure(
        self,
        connection: WampConnection | None,
        topic: Topic,
        request: WampRequest,
        payload: Any = None,
        exclude: list[str] | None = None,
        eligible: list[str] | None = None,
        provider: str | None = None,
    ) -> None:
        """Raise ``FirewallRejection`` to refuse; ``connection`` is None for pushes.

        A refused client gets a CALLERROR (code 401) and is disconnected; a refused push
        raises to the push handler.
        """
