"""From a routed WAMP verb to the user's topic or RPC handler, and what it came to.

A failed verb is a ``Failure`` with GOS's details: ``{code, topic, request, event}`` for topics,
``{code, rpc, params, request}`` for calls; the client's session encodes it (WAMP v1 as
CALLERROR, v2 as ERROR). A push has no connection to answer, so its errors are raised.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from gos_web_socket.app.exceptions import (
    FirewallRejection,
    PushUnsupported,
    RpcError,
    TopicNotFound,
)
from gos_web_socket.app.server.handlers import PushableTopic, SecuredTopic, TopicHandler
from gos_web_socket.app.server.rpc import RpcHandler
from gos_web_socket.app.server.session import Failure, Result
from gos_web_socket.app.server.topic import Topic
from gos_web_socket.app.server.topic_views import BoundTopic, Narrow, PublishedTopic

if TYPE_CHECKING:
    from gos_web_socket.app.push import Push
    from gos_web_socket.app.router import WampRequest
    from gos_web_socket.app.server.connection import WampConnection

logger = logging.getLogger(__name__)

ON_SUBSCRIBE = "onSubscribe"
ON_UNSUBSCRIBE = "onUnSubscribe"
ON_PUBLISH = "onPublish"


class TopicDispatcher:
    """Runs a verb on the handler named by the route callback, behind its ``secure()``."""

    def __init__(self, handlers: Mapping[str, TopicHandler]) -> None:
        self.handlers = handlers

    def _handler(self, request: WampRequest) -> TopicHandler | None:
        handler = self.handlers.get(request.route.callback)
        if handler is None:
            logger.error(
                'Could not find topic dispatcher in registry for callback "%s".',
                request.route.callback,
            )
        return handler

    @staticmethod
    def _register_timers(handler: TopicHandler, topic: Topic) -> None:
        if topic.timers_registered or not len(topic):
            return
        topic.timers_registered = True
        try:
            handler.register_periodic_timers(topic)
        except Exception as exc:
            logger.error("registering the timers of topic %s failed: %r", topic.id, exc)

    async def subscribe(
        self,
        connection: WampConnection,
        topic: Topic,
        request: WampRequest,
        accepted: Callable[[], None] | None = None,
    ) -> Failure | None:
        """``accepted`` runs once ``secure()`` passed, before the hook (WAMP v2's SUBSCRIBED)."""
        return await self._dispatch(ON_SUBSCRIBE, connection, topic, request, accepted=accepted)

    async def unsubscribe(
        self,
        connection: WampConnection,
        topic: Topic,
        request: WampRequest,
        accepted: Callable[[], None] | None = None,
    ) -> Failure | None:
        return await self._dispatch(ON_UNSUBSCRIBE, connection, topic, request, accepted=accepted)

    async def publish(
        self,
        connection: WampConnection,
        topic: Topic,
        request: WampRequest,
        event: Any,
        exclude: list[str],
        eligible: list[str],
        disclosed: Mapping[str, Any] | None = None,
        narrow: Narrow | None = None,
    ) -> Failure | None:
        """``disclosed``: the EVENT details naming the publisher, for what ``on_publish``
        broadcasts on ``topic`` (``PUBLISH disclose_me``); ``narrow``: the recipients the
        PUBLISH's lists allow, when it broadcasts (topic_views.py ``PublishedTopic``)."""
        view = PublishedTopic(topic, disclosed, narrow)
        try:
            return await self._dispatch(
                ON_PUBLISH, connection, topic, request, event, exclude, eligible, view=view
            )
        finally:
            view.end()

    async def _dispatch(
        self,
        verb: str,
        connection: WampConnection,
        topic: Topic,
        request: WampRequest,
        event: Any = None,
        exclude: list[str] | None = None,
        eligible: list[str] | None = None,
        accepted: Callable[[], None] | None = None,
        view: PublishedTopic | None = None,
    ) -> Failure | None:
        handler = self._handler(request)
        if handler is None:
            return None
        if isinstance(handler, SecuredTopic):
            try:
                await handler.secure(connection, topic, request, event, exclude, eligible)
            except FirewallRejection as exc:
                desc = f"You are not authorized to perform this action: {exc}"
                return self._refused(connection, topic, verb, desc, 401, exc)
            except Exception as exc:
                desc = f"Could not secure topic, connection rejected: {exc}"
                return self._refused(connection, topic, verb, desc, 500, exc)
        if accepted is not None:
            accepted()
        self._register_timers(handler, topic)
        try:
            if verb == ON_SUBSCRIBE:
                await handler.on_subscribe(connection, topic, request)
            elif verb == ON_UNSUBSCRIBE:
                await handler.on_unsubscribe(connection, topic, request)
            else:
                await handler.on_publish(
                    connection,
                    topic if view is None else view,
                    request,
                    event,
                    exclude or [],
                    eligible or [],
                )
        except Exception as exc:
            logger.error(
                "connection %s: topic %s %s failed: %r", connection.session_id, topic.id, verb, exc
            )
            logger.debug("traceback", exc_info=True)
            return Failure(topic.id, str(exc), _topic_details(500, verb), error=exc)
        return None

    @staticmethod
    def _refused(
        connection: WampConnection, topic: Topic, verb: str, desc: str, code: int, exc: Exception
    ) -> Failure:
        """A refusal by ``secure()``: the client is told, then disconnected."""
        logger.warning(
            "connection %s refused by topic %s (%s): %s", connection.session_id, topic.id, verb, exc
        )
        details = _topic_details(code, verb)
        return Failure(topic.id, desc, details, disconnect=True, error=exc)

    async def push(self, topic: Topic, push: Push) -> None:
        """Hand a push to its topic's ``on_push``; every failure is raised to the caller.

        ``secure`` and ``on_push`` get the topic bound to the push (``Topic.bound``), so that
        what they broadcast meanwhile is part of it; the timers get the channel topic itself.
        """
        request = push.request
        callback = request.route.callback
        handler = self.handlers.get(callback)
        if handler is None:
            raise TopicNotFound(callback, self.handlers)
        if not isinstance(handler, PushableTopic):
            raise PushUnsupported(handler.name or callback)
        bound = BoundTopic(topic, push)
        try:
            if isinstance(handler, SecuredTopic):
                await handler.secure(None, bound, request, push.data, None, None, push.provider)
            self._register_timers(handler, topic)
            await handler.on_push(bound, request, push.data, push.provider)
        finally:
            bound.end()  # a view kept for later (a task, a timer) broadcasts live from now on


def _topic_details(code: int, verb: str) -> dict[str, Any]:
    return {"code": code, "topic": {}, "request": {}, "event": verb}


class RpcDispatcher:
    """Calls ``handler.<method>(connection, request, params)``; failures in §4.5's shapes."""

    def __init__(self, handlers: Mapping[str, RpcHandler]) -> None:
        self.handlers = handlers

    async def call(
        self, connection: WampConnection, uri: str, request: WampRequest, params: Any
    ) -> Result | Failure:
        handler = self.handlers.get(request.route.callback)
        if handler is None:
            logger.error('no RPC handler "%s" for %s', request.route.callback, uri)
            desc = f'A RPC handler for the "{request.route_name}" route has not been registered.'
            return rpc_failure(uri, desc, 404, params)
        method = handler.find_method(str(request.attributes.get("method", "")))
        if method is None:
            return rpc_failure(uri, "Could not execute RPC callback, method not found", 404, params)
        try:
            result = await method(connection, request, params)
        except Exception as exc:
            code = exc.code if isinstance(exc, RpcError) else 500
            logger.error("connection %s: RPC %s failed: %r", connection.session_id, uri, exc)
            logger.debug("traceback", exc_info=True)
            return rpc_failure(uri, str(exc), code, params, exc)
        if result is None or result is False:
            return rpc_failure(uri, "RPC Error", 500, params)
        if isinstance(result, tuple):
            result = list(result)
        elif not isinstance(result, list | dict):
            result = [result]
        return Result(result)


def rpc_failure(
    uri: str,
    desc: str,
    code: int,
    params: Any,
    error: Exception | None = None,
    no_route: bool = False,
) -> Failure:
    """A failed call with GOS's details ``{code, rpc, params, request}``."""
    details = {"code": code, "rpc": {}, "params": params, "request": {}}
    return Failure(uri, desc, details, no_route=no_route, error=error)
