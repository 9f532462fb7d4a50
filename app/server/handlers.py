"""The base classes users write topics with: ``TopicHandler``, ``PushableTopic``, ``SecuredTopic``.

A handler is the code behind one route callback, shared by every channel the route matches;
the channel itself is a ``Topic`` (app/server/topic.py).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from gos_web_socket.app.server.topic import Topic

if TYPE_CHECKING:
    from gos_web_socket.app.router import WampRequest
    from gos_web_socket.app.server.connection import WampConnection


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
        """``data`` was pushed through ``provider``; typically ``topic.broadcast(data)``.

        ``topic`` is the channel's topic bound to this push until ``on_push`` returns: what it
        broadcasts is part of the push (recorded at its position on a route with history).
        ``topic.push.is_live`` is False when the push runs again to refill history or for a
        recovery; a broadcast to another topic is a live one of its own (docs/streams.md).
        """


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

        A refused client gets an error (code 401: v1 CALLERROR, v2 ERROR) and is disconnected;
        a refused push raises to the push handler.
        """
