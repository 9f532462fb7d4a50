"""A presence change as it goes between peers, and as it is applied to the merged state.

A change is one of ``join``/``leave`` (with a channel) and ``connect``/``disconnect`` (without)
for one member. A process's own change goes to its peers as a ``presence`` line (peers.py and
cluster.py carry it, a snapshot is the same lines) and a peer's line is applied to the
``PresenceState`` exactly as a local change is. Kept apart from ``Presence`` (service.py), which
decides what the resulting transitions mean, so that the line's shape lives in one place.
"""

from __future__ import annotations

from typing import Any

from gos_web_socket.app.presence.base import Member
from gos_web_socket.app.presence.state import PresenceState, Transition

__all__ = ["apply_change", "change_line"]


def change_line(op: str, channel: str | None, member: Member) -> dict[str, Any]:
    """The peer line that tells the other processes about one change of this process."""
    return {"op": "presence", "do": op, "channel": channel, "member": member.as_dict()}


def apply_change(
    state: PresenceState, op: str | None, channel: str | None, member: Member
) -> Transition | None:
    """Apply one change to ``state``; the transition it makes, if any (an unknown op, or a
    channel op without a channel, changes nothing)."""
    if op == "join" and channel is not None:
        return state.join(channel, member)
    if op == "leave" and channel is not None:
        return state.leave(channel, member.session_id)
    if op == "connect":
        return state.connect(member)
    if op == "disconnect":
        return state.disconnect(member.session_id)
    return None
