"""Housekeeping spread over loop turns, so that a burst of it cannot hold the loop.

When thousands of clients drop at once (a load balancer reload, a network blip), each one's
departure (out of its topics, presence, ``client_disconnected``) is a job that becomes ready in
the same loop turn: run together they stall every push for as long as they take. A ``TurnGate``
lets ``per_turn`` of them through per turn, in arrival order, and the loop polls its sockets
between slices; when nothing queues, a caller passes at once. Coroutines ``enter`` it; plain
callbacks (a transport's ``connection_lost``, which cannot await) go through ``call``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from functools import partial

logger = logging.getLogger(__name__)


class TurnGate:
    """At most ``per_turn`` callers of ``enter`` go on per loop turn; the rest wait, in order,
    for the next turns."""

    __slots__ = ("per_turn", "_passed", "_waiting", "_turn_ends")

    def __init__(self, per_turn: int) -> None:
        self.per_turn = per_turn
        self._passed = 0
        self._waiting: deque[asyncio.Future[None] | Callable[[], object]] = deque()
        self._turn_ends: asyncio.Handle | None = None

    @property
    def waiting(self) -> int:
        """Callers held for a later turn."""
        return len(self._waiting)

    async def enter(self) -> None:
        """Return in this turn when it has room and nobody waits; else in a later one."""
        if self._passed < self.per_turn and not self._waiting:
            self._passed += 1
            self._count_turn()
            return
        future = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        self._count_turn()
        await future

    def call(self, callback: Callable[..., object], *args: object) -> bool:
        """Run ``callback(*args)`` now when this turn has room and nobody waits (True); else
        queue it behind the others for a later turn (False)."""
        if self._passed < self.per_turn and not self._waiting:
            self._passed += 1
            self._count_turn()
            callback(*args)
            return True
        self._waiting.append(partial(callback, *args))
        self._count_turn()
        return False

    def _count_turn(self) -> None:
        if self._turn_ends is None:
            self._turn_ends = asyncio.get_running_loop().call_soon(self._next_turn)

    def _next_turn(self) -> None:
        """A new turn: the next ``per_turn`` waiting callers go on (a cancelled one gives its
        place up); a queued callback that raises is logged and the others go on."""
        self._turn_ends = None
        self._passed = 0
        waiting = self._waiting
        try:
            while waiting and self._passed < self.per_turn:
                item = waiting.popleft()
                if isinstance(item, asyncio.Future):
                    if not item.done():
                        item.set_result(None)
                        self._passed += 1
                    continue
                self._passed += 1
                try:
                    item()
                except Exception:
                    logger.exception("a callback queued for its turn failed")
        finally:  # even past a BaseException, those still waiting get their turns
            if self._passed or waiting:
                self._count_turn()
