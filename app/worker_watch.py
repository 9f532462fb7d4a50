"""The workers of ``server.workers`` while they run: every one started and waited for, one that
dies started again after its slot's backoff, all stopped with SIGTERM.

``WorkerPool`` (app/workers.py) makes the parts they need (the port, the fan-out, the links, the
ops listener) around this; each slot's process is an ``app.worker_slot.WorkerSlot``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gos_web_socket.app.worker_link import WorkerLinks
    from gos_web_socket.app.worker_slot import WorkerSlot

logger = logging.getLogger(f"{__package__}.workers")  # server.workers' lines: one name

__all__ = ["WorkerWatch"]

STABLE_AFTER = 30.0
"""Seconds a worker must have lived for its slot's backoff to start again from FIRST_BACKOFF."""

SlotArgv = Callable[["WorkerSlot", int], Sequence[str]]
"""A slot's worker command line, given the fd of the worker's end of its socket pair."""


class WorkerWatch:
    """Starts the slots' workers, restarts each one that dies until ``stopping`` is set, and
    stops them all (each drains, or is killed after ``kill_after`` seconds)."""

    def __init__(
        self,
        slots: Sequence[WorkerSlot],
        argv_for: SlotArgv,
        links: WorkerLinks,
        line_limit: int,
        kill_after: float,
    ) -> None:
        self.slots = slots
        self.links = links
        """Each worker's lines are read for as long as it lives (app/worker_link.py)."""
        self.line_limit = line_limit
        self.kill_after = kill_after
        self.stopping = asyncio.Event()
        """Set on SIGTERM/SIGINT and when stopping: no worker is started again."""
        self._argv_for = argv_for
        self._tasks: set[asyncio.Task[None]] = set()

    async def spawn(self, slot: WorkerSlot) -> asyncio.StreamReader:
        """Start ``slot``'s worker; the parent's end of its link, to read."""
        return await slot.spawn(functools.partial(self._argv_for, slot), self.line_limit)

    async def start_all(self) -> int:
        """Start every worker and wait until each is ready; else stop them and return the
        first failed worker's exit code."""
        readers = [await self.spawn(slot) for slot in self.slots]
        waits = [
            asyncio.create_task(slot.until_ready(reader))
            for slot, reader in zip(self.slots, readers, strict=True)
        ]
        stop = asyncio.create_task(self.stopping.wait())
        pending: set[asyncio.Future[Any]] = {stop, *waits}
        try:
            while not all(wait.done() for wait in waits):
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if stop in done:  # SIGTERM during start-up
                    return 0
                failed = [slot for slot, w in zip(self.slots, waits, strict=True) if w in done]
                failed = [slot for slot in failed if not waits[slot.index].result()]
                if failed:  # one cannot start: the others would not fare better
                    self.stopping.set()
                    code = await failed[0].exited()
                    logger.error("worker %d exited with %s while starting", failed[0].index, code)
                    return code or 1
        finally:
            for waiting in (stop, *waits):
                waiting.cancel()
        for slot, reader in zip(self.slots, readers, strict=True):
            task = asyncio.create_task(self.watch(slot, reader), name=f"worker-{slot.index}")
            self._tasks.add(task)
        return 0

    async def watch(self, slot: WorkerSlot, reader: asyncio.StreamReader) -> None:
        """Restart the slot's worker whenever it dies, until the pool stops."""
        while True:
            lines = asyncio.create_task(self.links.read(slot.index, reader))
            code = await slot.exited()
            lines.cancel()
            await asyncio.gather(lines, return_exceptions=True)
            if self.stopping.is_set():
                return
            lived = time.monotonic() - slot.started_at
            if lived >= STABLE_AFTER:
                slot.delays.reset()
            logger.warning(
                "worker %d (pid %s) exited with %s after %.1f s; restarting in %.1f s",
                slot.index,
                slot.pid,
                code,
                lived,
                slot.backoff,
            )
            try:
                await asyncio.wait_for(self.stopping.wait(), slot.backoff)
                return
            except TimeoutError:
                pass
            slot.delays.next()
            slot.restarts += 1
            reader = await self.spawn(slot)
            if await slot.until_ready(reader):
                logger.info("worker %d is back (pid %s)", slot.index, slot.pid)

    async def stop_all(self) -> int:
        """SIGTERM every worker; each drains within ``shutdown_timeout`` or is killed."""
        self.stopping.set()
        codes = await asyncio.gather(*(slot.terminate(self.kill_after) for slot in self.slots))
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        return 0 if all(code in (0, None) for code in codes) else 1
