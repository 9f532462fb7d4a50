"""The presence contract: what a member is, what a query answers, what a lifecycle event says.

A *member* is one connection subscribed to one channel of a ``presence: true`` route; a *user*
is the authenticated id behind connections (three tabs: one user, three connections). Anonymous
connections count as connections, never as users, and send no lifecycle event.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from gos_web_socket.app.events import Event

USER_CONNECTED = "gos_web_socket.presence.connected"
"""A user's first connection opened (on any worker or node that shares presence)."""
USER_DISCONNECTED = "gos_web_socket.presence.disconnected"
"""A user's last connection is gone (closed, or its worker or node died)."""
USER_JOINED = "gos_web_socket.presence.joined"
"""A user's first connection subscribed to a channel of a presence route."""
USER_LEFT = "gos_web_socket.presence.left"
"""A user's last connection to a presence channel left it."""
KINDS = (USER_CONNECTED, USER_DISCONNECTED, USER_JOINED, USER_LEFT)

PRESENCE_RPC = "gos/presence"
"""WAMP v1 RPC ``[channel]``: who is in ``channel`` (as ``gos/history``)."""
PRESENCE_PROCEDURE = "gos.presence"
"""The WAMP v2 procedure answering the same."""
EVENTS_PREFIX = "gos/presence/"
"""Subscribing to ``gos/presence/<channel>`` receives the channel's debounced join/leave."""


@dataclass(frozen=True, slots=True)
class Member:
    """One connection as presence shows it; ``origin`` is the process that holds it."""

    session_id: str
    user_id: str | None
    info: Mapping[str, Any]
    origin: str = "local"

    def as_dict(self) -> dict[str, Any]:
        return {"session": self.session_id, "user": self.user_id, "info": dict(self.info)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], origin: str) -> Member:
        return cls(str(data["session"]), data.get("user"), data.get("info") or {}, origin)


@dataclass(frozen=True)
class ChannelPresence:
    """Who is in one channel: every connection, and the distinct users with their info.

    ``stale`` is true while presence from other nodes may be out of date (broker away).
    """

    channel: str
    members: tuple[Member, ...]
    stale: bool = False

    @property
    def users(self) -> dict[str, dict[str, Any]]:
        """Distinct users: ``{user id: {"info": ..., "connections": n}}``."""
        users: dict[str, dict[str, Any]] = {}
        for member in self.members:
            if member.user_id is None:
                continue
            entry = users.setdefault(member.user_id, {"info": dict(member.info), "connections": 0})
            entry["connections"] += 1
        return users

    @property
    def num_clients(self) -> int:
        return len(self.members)

    @property
    def num_users(self) -> int:
        return len({m.user_id for m in self.members if m.user_id is not None})

    def as_dict(self, sessions: bool = True) -> dict[str, Any]:
        """The JSON answer of the ops listener and the CLI; without ``sessions`` (what WAMP
        clients get: another client's session id is a handle on it) connections carry only
        user and info."""
        connections = [member.as_dict() for member in self.members]
        if not sessions:
            connections = [{"user": c["user"], "info": c["info"]} for c in connections]
        return {
            "channel": self.channel,
            "num_clients": self.num_clients,
            "num_users": self.num_users,
            "users": self.users,
            "connections": connections,
            "stale": self.stale,
        }


@dataclass
class PresenceEvent(Event):
    """A lifecycle event for the backend: ``kind`` is one of ``KINDS``; ``channel`` is None for
    connected/disconnected. ``id`` stays the same on every redelivery: deduplicate on it."""

    kind: str
    user_id: str
    channel: str | None = None
    info: Mapping[str, Any] = field(default_factory=dict)
    origin: str = "local"
    at: float = field(default_factory=time.time)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.rsplit(".", 1)[-1],
            "user": self.user_id,
            "channel": self.channel,
            "info": dict(self.info),
            "origin": self.origin,
            "at": self.at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PresenceEvent:
        """The event a consumer reads back from the queue."""
        return cls(
            kind=f"gos_web_socket.presence.{data['kind']}",
            user_id=str(data["user"]),
            channel=data.get("channel"),
            info=data.get("info") or {},
            origin=str(data.get("origin", "")),
            at=float(data.get("at", 0.0)),
            id=str(data["id"]),
        )


class PresenceView(Protocol):
    """What Python code asks presence (``gos_web_socket.presence``)."""

    async def of(self, channel: str) -> ChannelPresence:
        """Who is in ``channel`` now."""
        ...

    def is_online(self, user_id: str) -> bool:
        """Whether ``user_id`` has at least one open connection."""
        ...

    def counts(self, channel: str) -> tuple[int, int]:
        """``(connections, distinct users)`` in ``channel``."""
        ...


class LifecycleSink(Protocol):
    """Where lifecycle events go besides the event dispatcher (the AMQP outbox)."""

    def emit(self, event: PresenceEvent) -> None:
        """Take ``event``; deliver it at least once, without blocking the caller."""
        ...
