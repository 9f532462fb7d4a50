"""Named periodic timers on the event loop, owned by a topic or a connection.

A topic's timers stop when its last subscriber leaves; a connection's when it closes. Owners
call ``cancel_all()``; users only ``add()`` and ``cancel()``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterator

logger = logging.getLogger(__name__)

TimerCallback = Callable[[], None] | Callable[[], Awaitable[None]]


class PeriodicTimers:
    """Timers by name; each runs ``callback`` every ``interval`` seconds until cancelled.

    A callback that raises is logged and keeps its schedule: one bad tick must not stop
    the timer. Adding a name that exists replaces the old timer.
    """

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def add(self, name: str, interval: float, callback: TimerCallback) -> None:
        if interval <= 0:
            raise ValueError(f"timer {name!r}: interval must be positive, got {interval}")
        self.cancel(name)
        task = asyncio.get_running_loop().create_task(
            self._run(name, interval, callback), name=f"timer:{self.owner}:{name}"
        )
        self._tasks[name] = task

    async def _run(self, name: str, interval: float, callback: TimerCallback) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            due += interval
            await asyncio.sleep(max(0.0, due - loop.time()))
            try:
                result = callback()
                if inspect.isawaitable(result):
                    await result
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.error("timer %s of %s failed: %r", name, self.owner, exc)

    def get(self, name: str) -> asyncio.Task[None] | None:
        return self._tasks.get(name)

    def is_active(self, name: str) -> bool:
        task = self._tasks.get(name)
        return task is not None and not task.done()

    def cancel(self, name: str) -> None:
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()

    def cancel_all(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._tasks))

    def __len__(self) -> int:
        return len(self._tasks)

    def __contains__(self, name: object) -> bool:
        return name in self._tasks
