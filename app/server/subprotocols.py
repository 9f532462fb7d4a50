"""The WebSocket subprotocols the server speaks, and the session each one gets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gos_web_socket.app.server.broker import Broker
from gos_web_socket.app.server.session import FrameBuilder, Session
from gos_web_socket.app.server.wamp1 import SUBPROTOCOL, Wamp1Format, Wamp1Session
from gos_web_socket.app.server.wamp2.serializers import serializers
from gos_web_socket.app.server.wamp2.session import Wamp2Session

if TYPE_CHECKING:
    from gos_web_socket.app.server.connection import WampConnection


class Subprotocols:
    """``wamp`` (WAMP v1), ``wamp.2.json`` and ``wamp.2.msgpack``, with one wire format each.

    The wire formats are shared by every connection of the server: ``Topic.broadcast`` frames
    one EVENT per format, however many subscribers use it.
    """

    def __init__(
        self,
        broker: Broker,
        frame: FrameBuilder,
        realm: str,
        max_message_size: int = 65536,
        json_max_depth: int = 64,
    ) -> None:
        self.broker = broker
        self.realm = realm
        self.wamp1 = Wamp1Format(frame)
        self.wamp2 = serializers(frame, max_message_size, json_max_depth)

    def choose(
        self, connection: WampConnection, offered: list[str]
    ) -> tuple[str | None, Session[Any]]:
        """The first offered subprotocol we speak, in the client's order, and its session.

        A handshake that offers none of ours (or nothing) speaks WAMP v1 without a subprotocol.
        """
        for name in offered:
            if name == SUBPROTOCOL:
                return name, Wamp1Session(connection, self.wamp1, self.broker)
            serializer = self.wamp2.get(name)
            if serializer is not None:
                return name, Wamp2Session(connection, serializer, self.broker, self.realm)
        return None, Wamp1Session(connection, self.wamp1, self.broker)
