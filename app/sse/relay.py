"""``mercure.relay``: the topic handler of a catch-all route (docs/sse.md), for hubs whose
topics are full IRIs such as ``https://example.com/books/1``.

What is pushed or published to a channel is broadcast to its subscribers as it came: SSE,
WAMP v1 and v2 alike. Its routes say who may subscribe and publish (``options.auth``).
"""

from __future__ import annotations

from typing import Any

from gos_web_socket.app.router import WampRequest
from gos_web_socket.app.server import PushableTopic, Topic, WampConnection


class MercureRelay(PushableTopic):
    """Relays pushes and client publishes to the channel's subscribers unchanged."""

    name = "mercure.relay"

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
