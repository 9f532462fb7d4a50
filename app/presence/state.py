"""Presence bookkeeping: members per channel, connections per user, and the transitions that
make lifecycle events (a user's first or last connection, in a channel or at all).

Pure data, no I/O: the service (service.py) feeds it what its own connections do and what
other workers say, and turns the transitions it returns into events.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeVar

from gos_web_socket.app.presence.base import (
    USER_CONNECTED,
    USER_DISCONNECTED,
    USER_JOINED,
    USER_LEFT,
    Member,
)

K = TypeVar("K")


@dataclass(frozen=True, slots=True)
class Transition:
    """A user's first or last connection, in ``channel`` or (None) on the server at all."""

    kind: str
    member: Member
    channel: str | None = None


class PresenceState:
    """Members by channel and connected sessions by user, from every origin."""

    __slots__ = ("channels", "sessions", "_user_channels", "_user_sessions")

    def __init__(self) -> None:
        self.channels: dict[str, dict[str, Member]] = {}
        """Members of each channel by session id."""
        self.sessions: dict[str, Member] = {}
        """Every open connection of an identified user, by session id."""
        self._user_channels: dict[tuple[str, str], int] = {}
        """(channel, user) → how many of the user's connections are in the channel."""
        self._user_sessions: dict[str, int] = {}
        """user → how many connections the user has open."""

    def connect(self, member: Member) -> Transition | None:
        """A connection opened; a transition when it is the user's first."""
        user = member.user_id
        if user is None or member.session_id in self.sessions:
            return None
        self.sessions[member.session_id] = member
        count = self._user_sessions[user] = self._user_sessions.get(user, 0) + 1
        return Transition(USER_CONNECTED, member) if count == 1 else None

    def disconnect(self, session_id: str) -> Transition | None:
        """A connection closed; a transition when it was the user's last."""
        member = self.sessions.pop(session_id, None)
        if member is None or member.user_id is None:
            return None
        return self._count_down(self._user_sessions, member.user_id, USER_DISCONNECTED, member)

    def join(self, channel: str, member: Member) -> Transition | None:
        """A connection subscribed to ``channel``; a transition for the user's first there."""
        members = self.channels.setdefault(channel, {})
        if member.session_id in members:
            return None
        members[member.session_id] = member
        if member.user_id is None:
            return None
        key = (channel, member.user_id)
        count = self._user_channels[key] = self._user_channels.get(key, 0) + 1
        return Transition(USER_JOINED, member, channel) if count == 1 else None

    def leave(self, channel: str, session_id: str) -> Transition | None:
        """A connection left ``channel``; a transition when it was the user's last there."""
        members = self.channels.get(channel)
        member = None if members is None else members.pop(session_id, None)
        if member is None:
            return None
        if not members:
            del self.channels[channel]
        if member.user_id is None:
            return None
        key = (channel, member.user_id)
        return self._count_down(self._user_channels, key, USER_LEFT, member, channel)

    @staticmethod
    def _count_down(
        counts: dict[K, int], key: K, kind: str, member: Member, channel: str | None = None
    ) -> Transition | None:
        left = counts.get(key, 0) - 1
        if left > 0:
            counts[key] = left
            return None
        counts.pop(key, None)
        return Transition(kind, member, channel)

    def drop_origin(self, origin: str) -> list[Transition]:
        """Forget every member and connection ``origin`` held (a worker or node died): the
        leaves first, then the disconnects."""
        transitions: list[Transition] = []
        for channel, members in list(self.channels.items()):
            for session_id in [s for s, m in members.items() if m.origin == origin]:
                transition = self.leave(channel, session_id)
                if transition is not None:
                    transitions.append(transition)
        for session_id in [s for s, m in self.sessions.items() if m.origin == origin]:
            transition = self.disconnect(session_id)
            if transition is not None:
                transitions.append(transition)
        return transitions

    def of_origin(self, origin: str) -> Iterator[tuple[str | None, Member]]:
        """What ``origin`` holds: its connections (channel None) and its memberships."""
        for member in self.sessions.values():
            if member.origin == origin:
                yield None, member
        for channel, members in self.channels.items():
            for member in members.values():
                if member.origin == origin:
                    yield channel, member

    def holds(self, session_id: str) -> bool:
        """Whether ``session_id`` is a member of any channel."""
        return any(session_id in members for members in self.channels.values())

    def members(self, channel: str) -> tuple[Member, ...]:
        return tuple(self.channels.get(channel, {}).values())

    def is_online(self, user_id: str) -> bool:
        return user_id in self._user_sessions

    def counts(self, channel: str) -> tuple[int, int]:
        """``(connections, distinct users)`` in ``channel``."""
        members = self.channels.get(channel, {})
        users = {m.user_id for m in members.values() if m.user_id is not None}
        return len(members), len(users)
