"""Join and leave to clients, debounced: per channel, what changed over one window goes out as
one diff, so that a mass reconnect costs each watcher a frame per window, not one per client.

Changes that cancel within the window (a user who leaves and comes back, a reload) are not
sent at all; a user's second tab is no join (the state only reports first and last).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

Publish = Callable[[str, dict[str, Any]], int]
"""Broadcast a diff of a channel to its watchers; returns how many got it."""


class _Pending:
    __slots__ = ("joins", "leaves")

    def __init__(self) -> None:
        self.joins: dict[str, Mapping[str, Any]] = {}
        self.leaves: set[str] = set()


class Diffs:
    """Net joins and leaves per channel since the last flush, flushed ``window`` seconds after
    the first change (one timer for all channels)."""

    def __init__(self, window: float, publish: Publish) -> None:
        self.window = window
        self._publish = publish
        self._pending: dict[str, _Pending] = {}
        self._timer: asyncio.TimerHandle | None = None
        self.diffs_sent = 0
        """Diffs written, counting each watcher once (the frames join/leave cost)."""

    def joined(self, channel: str, user_id: str, info: Mapping[str, Any]) -> None:
        pending = self._changed(channel)
        if user_id in pending.leaves:
            pending.leaves.discard(user_id)  # left and came back within the window
        else:
            pending.joins[user_id] = info

    def left(self, channel: str, user_id: str) -> None:
        pending = self._changed(channel)
        if pending.joins.pop(user_id, None) is None:
            pending.leaves.add(user_id)

    def _changed(self, channel: str) -> _Pending:
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.window, self.flush)
        pending = self._pending.get(channel)
        if pending is None:
            pending = self._pending[channel] = _Pending()
        return pending

    @property
    def pending(self) -> int:
        """How many channels have changes waiting for the window's end."""
        return len(self._pending)

    def flush(self) -> int:
        """Send every channel's net diff now; returns how many diffs were written."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending = self._pending, {}
        sent = 0
        for channel, change in pending.items():
            if not change.joins and not change.leaves:
                continue
            diff = {
                "channel": channel,
                "joins": {user: {"info": dict(info)} for user, info in change.joins.items()},
                "leaves": sorted(change.leaves),
            }
            sent += self._publish(channel, diff)
        self.diffs_sent += sent
        return sent

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pending.clear()
