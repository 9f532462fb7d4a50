"""``GET /presence?channel=C`` on the ops listener (``server.metrics``), and what the CLI's
``gos-websocket presence C`` prints: the channel's ``ChannelPresence.as_dict``.

The ops listener is for operators (loopback by default, like ``/metrics``): it applies no
route rule. The parent of several workers answers with a worker's answer (every worker holds
the presence of all).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from gos_web_socket.app.web import Request, Response

if TYPE_CHECKING:
    from gos_web_socket.app.presence.service import Presence

PATH = "/presence"


def presence_path(channel: str) -> str:
    """The request path asking for ``channel``."""
    return f"{PATH}?channel={quote(channel, safe='')}"


def channel_of(request: Request) -> str | Response:
    """The ``channel`` parameter, or the 400 answer saying what is needed."""
    values = request.query.get("channel") or []
    if len(values) != 1 or not values[0]:
        return Response.json({"error": "GET /presence?channel=<channel> (one channel)"}, 400)
    return values[0]


async def answer(presence: Presence | None, request: Request) -> Response:
    """Who is in the requested channel (503 before the server runs)."""
    channel = channel_of(request)
    if isinstance(channel, Response):
        return channel
    if presence is None:
        return Response.json({"error": "no server attached"}, 503)
    found = await presence.of(channel)
    return Response.json(found.as_dict())
