"""What the ZeroMQ pusher and receivers agree on: the endpoint, the frame size limit, and how a
multipart frame becomes one body."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gos_web_socket.settings.models import ZmqSettings

__all__ = ["DEFAULT_MAX_MESSAGE_SIZE", "LIMIT_SETTING", "endpoint", "join"]

DEFAULT_MAX_MESSAGE_SIZE = 1 << 20
"""``server.limits.zmq_max_message_size``'s default, for pushers and receivers built without it."""
LIMIT_SETTING = "server.limits.zmq_max_message_size"


def endpoint(settings: ZmqSettings) -> str:
    """``protocol://host:port``, exactly as GOS builds it from the same keys."""
    return f"{settings.protocol}://{settings.host}:{settings.port}"


def join(parts: list[bytes]) -> bytes:
    """One frame's body: its parts joined (a pusher may send several)."""
    return parts[0] if len(parts) == 1 else b"".join(parts)
