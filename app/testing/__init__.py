"""WAMP v1 and v2 test clients, and an in-memory pusher that finds its handler late.

The helpers that build and run your container (``running``, ``make_container``,
``use_memory_pusher``, ``memory_pusher``, ``url_of``) are ``gos_web_socket.testing``, beside the
composition root: nothing in ``app`` imports ``containers``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gos_web_socket.app.message import Message
from gos_web_socket.app.router import Router
from gos_web_socket.app.testing.wamp1 import CallError, ConnectFailed, WampTestClient
from gos_web_socket.app.testing.wamp2 import JoinFailed, RawPeer, V2Client
from gos_web_socket.app.transports.memory import InMemoryPusher, InMemoryServerPushHandler

__all__ = [
    "CallError",
    "ConnectFailed",
    "JoinFailed",
    "LinkedMemoryPusher",
    "RawPeer",
    "V2Client",
    "WampTestClient",
]


class LinkedMemoryPusher(InMemoryPusher):
    """An InMemoryPusher that finds its handler at the first push: built eagerly, the handler
    would close a cycle (handler → dispatcher → ops → pusher registry → this pusher)."""

    def __init__(self, router: Router, handler: Callable[[], InMemoryServerPushHandler]) -> None:
        super().__init__(router)
        self._handler = handler

    async def send(self, envelope: Message, context: dict[str, Any]) -> None:
        if self.target is None:
            self.target = self._handler()
        await super().send(envelope, context)
