"""From a routed WAMP verb to the user's topic or RPC handler, with GOS's error replies.

Topic errors answer ``[4, topic, topic, desc, {code, topic, request, event}]`` (the call-id
slot holds the topic URI, as in GOS); RPC errors ``[4, callId, procUri, desc, {code, rpc,
params, request}]``. A push has no connection to answer, so its errors are raised.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from app.exceptions import FirewallRejection, PushUnsupported, RpcError, TopicNotFound
from app.server.rpc import RpcHandler
from app.server.topic import PushableTopic, SecuredTopic, Topic, TopicHandler

if TYPE_CHECKING:
    from app.router import WampRequest
    from app.server.protocol import WampConnection

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
        self, connection: WampConnection, topic: Topic, request: WampRequest
    ) -> None:
        await self._dispatch(ON_SUBSCRIBE, connection, topic, request)

    async def unsubscribe(
        self, connection: WampConnection, topic: Topic, request: WampRequest
    ) -> None:
        await self._dispatch(ON_UNSUBSCRIBE, connection, topic, request)

    async def publish(
        self,
        connection: WampConnection,
        topic: Topic,
        request: WampRequest,
        event: Any,
        exclude: list[str],
        eligible: list[str],
    ) -> None:
        await self._dispatch(ON_PUBLISH, connection, topic, request, event, exclude, eligible)

    async def _dispatch(
        self,
        verb: str,
        connection: WampConnection,
        topic: Topic,
        request: WampRequest,
        event: Any = None,
        exclude: list[str] | None = None,
        eligible: list[str] | None = None,
    ) -> None:
        handler = self._handler(request)
        if handler is None:
            return
        if isinstance(handler, SecuredTopic):
            try:
                await handler.secure(connection, topic, request, event, exclude, eligible)
            except FirewallRejection as exc:
                desc = f"You are not authorized to perform this action: {exc}"
                self._refuse(connection, topic, verb, desc, 401, exc)
                return
            except Exception as exc:
                desc = f"Could not secure topic, connection rejected: {exc}"
                self._refuse(connection, topic, verb, desc, 500, exc)
                return
        self._register_timers(handler, topic)
        try:
            if verb == ON_SUBSCRIBE:
                await handler.on_subscribe(connection, topic, request)
            elif verb == ON_UNSUBSCRIBE:
                await handler.on_unsubscribe(connection, topic, request)
            else:
                await handler.on_publish(
                    connection, topic, request, event, exclude or [], eligible or []
                )
        except Exception as exc:
            logger.error(
                "connection %s: topic %s %s failed: %r", connection.session_id, topic.id, verb, exc
            )
            logger.debug("traceback", exc_info=True)
            connection.call_error(topic.id, topic.id, str(exc), _topic_details(500, verb))

    @staticmethod
    def _refuse(
        connection: WampConnection, topic: Topic, verb: str, desc: str, code: int, exc: Exception
    ) -> None:
        logger.warning(
            "connection %s refused by topic %s (%s): %s", connection.session_id, topic.id, verb, exc
        )
        connection.call_error(topic.id, topic.id, desc, _topic_details(code, verb))
        connection.close(1008, "refused by a secured topic")

    async def push(self, topic: Topic, request: WampRequest, data: Any, provider: str) -> None:
        """Hand a push to its topic's ``on_push``; every failure is raised to the caller."""
        callback = request.route.callback
        handler = self.handlers.get(callback)
        if handler is None:
            raise TopicNotFound(callback, self.handlers)
        if not isinstance(handler, PushableTopic):
            raise PushUnsupported(handler.name or callback)
        if isinstance(handler, SecuredTopic):
            await handler.secure(None, topic, request, data, None, None, provider)
        self._register_timers(handler, topic)
        await handler.on_push(topic, request, data, provider)


def _topic_details(code: int, verb: str) -> dict[str, Any]:
    return {"code": code, "topic": {}, "request": {}, "event": verb}


class RpcDispatcher:
    """Calls ``handler.<method>(connection, request, params)`` and answers with §4.5's shapes."""

    def __init__(self, handlers: Mapping[str, RpcHandler]) -> None:
        self.handlers = handlers

    async def call(
        self,
        connection: WampConnection,
        call_id: str,
        uri: str,
        request: WampRequest,
        params: Any,
    ) -> None:
        def fail(desc: str, code: int) -> None:
            details = {"code": code, "rpc": {}, "params": params, "request": {}}
            connection.call_error(call_id, uri, desc, details)

        handler = self.handlers.get(request.route.callback)
        if handler is None:
            logger.error('no RPC handler "%s" for %s', request.route.callback, uri)
            fail(
                f'A RPC handler for the "{request.route_name}" route has not been registered.', 404
            )
            return
        method = handler.find_method(str(request.attributes.get("method", "")))
        if method is None:
            fail("Could not execute RPC callback, method not found", 404)
            return
        try:
            result = await method(connection, request, params)
        except Exception as exc:
            code = exc.code if isinstance(exc, RpcError) else 500
            logger.error("connection %s: RPC %s failed: %r", connection.session_id, uri, exc)
            logger.debug("traceback", exc_info=True)
            fail(str(exc), code)
            return
        if result is None or result is False:
            fail("RPC Error", 500)
            return
        if isinstance(result, tuple):
            result = list(result)
        elif not isinstance(result, list | dict):
            result = [result]
        connection.call_result(call_id, result)
