"""One worker position of ``server.workers`` in the parent: its process, started, waited for,
stopped, and how it fared (read by the parent's /health and /metrics, app/ops.py).

``WorkerPool`` (app/workers.py) owns the slots; ``WorkerWatch`` (app/worker_watch.py) starts
their workers and restarts one that dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gos_web_socket.app.backoff import Backoff

logger = logging.getLogger(f"{__package__}.workers")  # server.workers' lines: one name

__all__ = ["WorkerSlot"]

FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0
START_TIMEOUT = 60.0
"""Seconds a worker may take from exec to ready (imports, binding, push handlers)."""
READY_KILL_AFTER = 5.0
"""Seconds a worker that did not report in time gets to stop on SIGTERM before SIGKILL."""

ArgvFor = Callable[[int], Sequence[str]]
"""The worker's command line, given the fd of its end of the socket pair."""


@dataclass
class WorkerSlot:
    """One worker position: its current process, and how it fared (for /health, /metrics)."""

    index: int
    process: asyncio.subprocess.Process | None = None
    ops_port: int | None = None
    ready: bool = False
    restarts: int = 0
    started_at: float = 0.0
    delays: Backoff = field(default_factory=lambda: Backoff(FIRST_BACKOFF, MAX_BACKOFF), repr=False)
    """The slot's restart delays; ``backoff`` is the next one."""
    link: asyncio.StreamWriter | None = field(default=None, repr=False)
    """The parent's end of the socket pair; closing it (or dying) tells the worker to stop."""

    @property
    def backoff(self) -> float:
        """Seconds the next restart waits."""
        return self.delays.current

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    async def spawn(self, argv_for: ArgvFor, line_limit: int) -> asyncio.StreamReader:
        """Start the slot's worker with a socket pair to it; the parent's end to read its
        lines (``line_limit``: bytes of one line)."""
        ours, theirs = socket.socketpair()
        argv = argv_for(theirs.fileno())
        try:
            self.process = await asyncio.create_subprocess_exec(
                *argv,
                pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
                # Its own session (uvloop has no process_group): a terminal's Ctrl-C reaches
                # the parent alone, which stops every worker with SIGTERM (exit 0).
                start_new_session=True,
            )
        finally:
            theirs.close()
        self.ready, self.ops_port = False, None
        self.started_at = time.monotonic()
        reader, self.link = await asyncio.open_connection(sock=ours, limit=line_limit)
        logger.info("worker %d started (pid %d)", self.index, self.process.pid)
        return reader

    async def until_ready(self, reader: asyncio.StreamReader) -> bool:
        """Wait for the worker's report; False when it exited (or went silent) first."""
        try:
            line = await asyncio.wait_for(reader.readline(), START_TIMEOUT)
        except TimeoutError:
            logger.error("worker %d did not report within %s s", self.index, START_TIMEOUT)
            await self.terminate(kill_after=READY_KILL_AFTER)
            return False
        if not line:
            return False
        report = json.loads(line)
        self.ops_port, self.ready = report.get("ops_port"), True
        return True

    async def exited(self) -> int:
        """Wait for the worker to exit; its exit code."""
        assert self.process is not None
        code = await self.process.wait()
        self.ready = False
        self.close_link()
        return code

    def close_link(self) -> None:
        """Close the parent's end of the socket pair, if open."""
        if self.link is not None:
            self.link.close()
            self.link = None

    async def terminate(self, kill_after: float) -> int | None:
        """SIGTERM the worker, SIGKILL it after ``kill_after`` seconds; its exit code (None:
        never started)."""
        process = self.process
        if process is None:
            return None
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), kill_after)
            except TimeoutError:
                logger.warning("worker %d did not stop in %s s; killing it", self.index, kill_after)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        return process.returncode
