"""``acme.topic`` relays what reaches its channel; ``acme.rpc`` offers ``sum`` and ``echo``."""

from __future__ import annotations

from numbers import Real
from typing import Any

from gos_web_socket.app.exceptions import RpcError
from gos_web_socket.app.router import WampRequest
from gos_web_socket.app.server import PushableTopic, RpcHandler, Topic, WampConnection


class AcmeTopic(PushableTopic):
    """Route ``acme_topic`` (``acme/channel/{room}``): a chat room fed by clients and pushers."""

    name = "acme.topic"

    async def on_publish(
        self,
        connection: WampConnection,
        topic: Topic,
        request: WampRequest,
        event: Any,
        exclude: list[str],
        eligible: list[str],
    ) -> None:
        topic.broadcast(event, exclude, eligible)

    async def on_push(self, topic: Topic, request: WampRequest, data: Any, provider: str) -> None:
        topic.broadcast(data)


class AcmeRpc(RpcHandler):
    """Route ``acme_rpc`` (``acme/rpc/{method}``)."""

    name = "acme.rpc"

    async def sum(self, connection: WampConnection, request: WampRequest, params: Any) -> Any:
        """The sum of the numeric params: ``[2, id, "acme/rpc/sum", 2, 3]`` answers ``[5]``."""
        values = list(params.values()) if isinstance(params, dict) else list(params)
        if not all(isinstance(v, Real) and not isinstance(v, bool) for v in values):
            raise RpcError("sum takes numbers only", 400)
        return sum(values)

    async def echo(self, connection: WampConnection, request: WampRequest, params: Any) -> Any:
        """The params as they came."""
        return params
