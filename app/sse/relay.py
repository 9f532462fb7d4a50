"""``mercure.relay``: the topic handler of a catch-all route (docs/sse.md), for hubs whose
topics are full IRIs such as ``https://example.com/books/1``.

What is pushed (by a pusher, or published over HTTP) is broadcast to the channel's
subscribers as it came: SSE, WAMP v1 and v2 alike. A WAMP client's PUBLISH is not relayed
(``TopicHandler.on_publish`` does nothing: Mercure's publishers are backends); subclass it to
relay those too. Its routes say who may subscribe (``options.auth``).

A private Mercure update reaches SSE subscribers whose token allows one of its topics (the
wire format sees to it) and WAMP subscribers only where the route's ``subscribe`` rule is
stricter than ``anyone``; on a route open to anyone it is sent to the SSE subscribers alone,
and, being a filtered broadcast, not kept in the channel's history.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gos_web_socket.app.auth.authorization import OPTION, parse_rule
from gos_web_socket.app.router import WampRequest
from gos_web_socket.app.server import PushableTopic, Topic
from gos_web_socket.app.sse.wire import SseFormat, Update


class MercureRelay(PushableTopic):
    """Relays pushes to the channel's subscribers unchanged."""

    name = "mercure.relay"

    async def on_push(self, topic: Topic, request: WampRequest, data: Any, provider: str) -> None:
        data = Update.from_wire(data) or data  # an HTTP publish another node forwarded
        if isinstance(data, Update) and data.private and open_to_anyone(request):
            sse = [s.session_id for s in topic if isinstance(s.wire_format, SseFormat)]
            if sse:
                topic.broadcast(data, eligible=sse)
            return
        topic.broadcast(data)


def open_to_anyone(request: WampRequest) -> bool:
    """Whether the route lets anyone subscribe (its ``options.auth.subscribe``, ``anyone``
    by default)."""
    auth = request.route.options.get(OPTION)
    text = auth.get("subscribe") if isinstance(auth, Mapping) else None
    return text is None or parse_rule(text, OPTION, request.route).kind == "anyone"
