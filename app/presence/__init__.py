"""Presence: who is in the channels of ``presence: true`` routes (docs/presence.md)."""

from gos_web_socket.app.presence.base import (
    EVENTS_PREFIX,
    KINDS,
    PRESENCE_PROCEDURE,
    PRESENCE_RPC,
    USER_CONNECTED,
    USER_DISCONNECTED,
    USER_JOINED,
    USER_LEFT,
    ChannelPresence,
    LifecycleSink,
    Member,
    PresenceEvent,
    PresenceView,
)

__all__ = [
    "EVENTS_PREFIX",
    "KINDS",
    "PRESENCE_PROCEDURE",
    "PRESENCE_RPC",
    "USER_CONNECTED",
    "USER_DISCONNECTED",
    "USER_JOINED",
    "USER_LEFT",
    "ChannelPresence",
    "LifecycleSink",
    "Member",
    "PresenceEvent",
    "PresenceView",
]
