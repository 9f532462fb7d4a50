"""Presence through the verbs: subscribing to ``gos/presence/<channel>`` (join/leave events)
and calling ``gos/presence`` (v1) / ``gos.presence`` (v2), who is in a channel now.

Who may see a channel's presence is who may subscribe to it; on a route whose handler is a
``SecuredTopic``, only a member of the channel (``secure()`` vetted it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gos_web_socket.app.presence.base import ChannelPresence
from gos_web_socket.app.server.dispatch import rpc_failure
from gos_web_socket.app.server.handlers import SecuredTopic
from gos_web_socket.app.server.session import Failure, Result

if TYPE_CHECKING:
    from gos_web_socket.app.presence.service import Presence
    from gos_web_socket.app.router import WampRequest
    from gos_web_socket.app.server.connection import WampConnection
    from gos_web_socket.app.server.dispatch import TopicDispatcher
    from gos_web_socket.app.server.manager import TopicManager
    from gos_web_socket.app.server.topic import Topic
    from gos_web_socket.app.server.verb_gate import VerbGate
    from gos_web_socket.app.server.wamp2.meta import MetaApi


class PresenceVerbs:
    """The presence watchers and queries of one process's ``Presence``."""

    def __init__(
        self,
        presence: Presence,
        gate: VerbGate,
        manager: TopicManager,
        topics: TopicDispatcher,
        meta: MetaApi,
    ) -> None:
        self.presence = presence
        self.gate = gate
        self.manager = manager
        self.topics = topics
        self.meta = meta

    async def subscribe(
        self,
        connection: WampConnection,
        uri: str,
        topic: Topic,
        request: WampRequest,
        accepted: Callable[[Topic], None] | None,
    ) -> Topic | Failure:
        """Join channel ``uri`` of a ``presence: true`` route: the connection is a member once
        ``secure()`` let it in, before the topic hook runs (at once without a topic handler:
        nothing secures it)."""
        joined = False

        def secured() -> None:
            nonlocal joined
            joined = True
            self.presence.joined(connection, uri)
            if accepted is not None:
                accepted(topic)

        failure = await self.topics.subscribe(connection, topic, request, secured)
        if failure is None and not joined:
            self.presence.joined(connection, uri)
        return failure or topic

    def route(self, connection: WampConnection, uri: str, channel: str) -> WampRequest | Failure:
        """The route of ``channel`` when it keeps presence and its ``subscribe`` rule allows
        this connection (who may not subscribe may not see who is there); on a route whose
        handler is a ``SecuredTopic``, only for a member of the channel (``secure()`` vetted
        it: the rule alone cannot say who ``secure()`` bars)."""
        request = self.gate.allowed("subscribe", connection, channel)
        if isinstance(request, Failure):
            return dataclasses.replace(request, uri=uri)
        if not request.route.presence:
            desc = f"{channel}: route {request.route_name} has no presence (presence: true)"
            return Failure(uri, desc, {"code": 404})
        secured = isinstance(self.topics.handlers.get(request.route.callback), SecuredTopic)
        if secured and not self.presence.is_member(channel, connection.session_id):
            desc = f"{channel}: route {request.route_name} is secured; subscribe to it first"
            return self.gate.not_authorized(uri, f"{desc} (its secure() decides who sees presence)")
        return request

    def watch(
        self,
        connection: WampConnection,
        uri: str,
        channel: str,
        accepted: Callable[[Topic], None] | None,
    ) -> Topic | Failure:
        """Subscribe to ``gos/presence/<channel>``: the channel's debounced join/leave, after
        an EVENT ``{"channel", "state"}`` with who is there now. No topic hook runs."""
        request = self.route(connection, uri, channel)
        if isinstance(request, Failure):
            return request
        topic = self.manager.subscribe(connection, uri, request, plain=True)
        if topic is None:
            return connection.subscriptions[uri][0]
        self.meta.events.subscribed(
            connection.session_id, topic.subscription_id, uri, "exact", len(topic) == 1
        )
        if accepted is not None:
            accepted(topic)
        members = self.presence.state.members(channel)
        found = ChannelPresence(channel, members, self.presence.stale)
        state = {"channel": channel, "state": found.as_dict(sessions=False)}
        connection.send_event(uri, state)
        return topic

    async def call(self, connection: WampConnection, uri: str, params: Any) -> Result | Failure:
        """``gos/presence`` (v1) and ``gos.presence`` (v2): ``[channel]`` answers who is in it
        (``ChannelPresence.as_dict``), to a connection whose ``subscribe`` rule allows it."""
        presence = self.presence
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
        request = self.route(connection, uri, args[0])
        if isinstance(request, Failure):
            return rpc_failure(uri, request.desc, request.code or 404, params, request.error)
        return Result((await presence.of(args[0])).as_dict(sessions=False))
