"""Who is connected: GOS 3.x's ``ConnectionRepository`` (1.x/2.x: the ClientManipulator).

``gos_web_socket.connection_repository`` in the container; topics and RPC handlers use it to
find the connections of a user or a role, e.g. to ``send_event`` to one user on a shared topic.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from gos_web_socket.app.auth.user import User

if TYPE_CHECKING:
    from gos_web_socket.app.server.connection import WampConnection
    from gos_web_socket.app.server.server import WampServer
    from gos_web_socket.app.server.topic import Topic


class ConnectionRepository:
    """Queries over one server's live connections; a topic may be a ``Topic`` or its channel."""

    def __init__(self, server: WampServer) -> None:
        self.server = server

    def _subscribers(self, topic: Topic | str | None) -> list[WampConnection]:
        """The subscribers of ``topic``, or every open connection when it is None."""
        if topic is None:
            return sorted(self.server.live_connections, key=lambda c: c.session_id)
        live = self.server.topics.get(topic) if isinstance(topic, str) else topic
        connections: Iterable[WampConnection] = live if live is not None else ()  # type: ignore[assignment]
        return list(connections)

    def find_all(self, topic: Topic | str | None, anonymous: bool = False) -> list[WampConnection]:
        """The connections on ``topic`` (None: all); anonymous ones only when ``anonymous``."""
        return [c for c in self._subscribers(topic) if anonymous or not c.user.is_anonymous]

    def find_all_by_username(
        self, topic: Topic | str | None, username: str
    ) -> list[WampConnection]:
        """Every connection of user ``username`` on ``topic`` (None: anywhere): every tab."""
        return [c for c in self._subscribers(topic) if c.user.id == username]

    def find_all_with_roles(
        self, topic: Topic | str | None, roles: Iterable[str]
    ) -> list[WampConnection]:
        """The authenticated connections on ``topic`` holding at least one of ``roles``."""
        wanted = tuple(roles)
        return [c for c in self._subscribers(topic) if c.user.has_role(*wanted)]

    def find_token_for_connection(self, connection: WampConnection) -> User:
        """GOS's security token of a connection: our ``User`` (anonymous included)."""
        return connection.user

    def get_user(self, connection: WampConnection) -> User | None:
        """The authenticated user of ``connection``; None for an anonymous one."""
        return None if connection.user.is_anonymous else connection.user
