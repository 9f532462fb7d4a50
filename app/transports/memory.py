"""In-memory pusher and push handler: test doubles, and the model of a custom transport."""

from __future__ import annotations

import asyncio
from typing import Any

from app.events import EventDispatcher
from app.message import Message
from app.router import Router
from app.transports.base import PushableServer, Pusher, ServerPushHandler


class InMemoryPusher(Pusher):
    """Records every envelope in ``sent`` instead of sending it."""

    def __init__(self, router: Router) -> None:
        super().__init__(router)
        self.sent: list[tuple[Message, dict[str, Any]]] = []

    async def _do_push(self, message: Message, context: dict[str, Any]) -> None:
        self.sent.append((message, context))


class InMemoryServerPushHandler(ServerPushHandler):
    """Delivers bodies put on ``queue`` (``await handler.feed(body)``) to the server."""

    def __init__(self, router: Router, dispatcher: EventDispatcher) -> None:
        super().__init__(router, dispatcher)
        self._app: PushableServer | None = None

    async def start(self, app: PushableServer) -> None:
        self._app = app

    async def close(self) -> None:
        self._app = None

    @property
    def is_consuming(self) -> bool:
        return self._app is not None

    async def feed(self, body: bytes | str) -> Message:
        """Hand one raw body to the server as a transport would."""
        if self._app is None:
            raise asyncio.InvalidStateError("the handler has not been started")
        return await self.handle_body(self._app, body)
