"""The project's container: ours, plus its own topic and RPC handler."""

from __future__ import annotations

from typing import Any

from dependency_injector import providers

from gos_web_socket import containers
from gos_web_socket.app.router import WampRequest
from gos_web_socket.app.server import PushableTopic, RpcHandler, Topic, WampConnection


class ChatTopic(PushableTopic):
    """``chat/room/{room}``: what a client publishes or the backend pushes reaches the room."""

    name = "chat.room"

    async def on_publish(
        self,
        connection: WampConnection,
        topic: Topic,
        request: WampRequest,
        event: Any,
        exclude: list[str],
        eligible: list[str],
    ) -> None:
        topic.broadcast({"room": request.attributes["room"], "said": event}, exclude, eligible)

    async def on_push(self, topic: Topic, request: WampRequest, data: Any, provider: str) -> None:
        topic.broadcast({"room": request.attributes["room"], "said": data})


class ShoutRpc(RpcHandler):
    """``chat/rpc/{method}``: ``shout`` answers the text in capitals."""

    name = "chat.rpc"

    async def shout(self, connection: WampConnection, request: WampRequest, params: Any) -> Any:
        return " ".join(str(p) for p in params).upper()


class Container(containers.Container):
    """``gos-websocket server --config config.yaml`` (config.yaml names this class)."""

    topics = providers.List(providers.Singleton(ChatTopic))
    rpcs = providers.List(providers.Singleton(ShoutRpc))
