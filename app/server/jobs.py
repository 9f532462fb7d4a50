"""One connection's requests, run in arrival order on a short-lived worker task.

A user hook that awaits must never let a later PUBLISH overtake the SUBSCRIBE before it, so a
session's requests run one after the other; the worker task exists only while jobs wait, and
an idle connection holds no queue. Budgets: ``max_queued_jobs`` and ``max_pending_calls``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from gos_web_socket.app.exceptions import ProtocolError
from gos_web_socket.app.limits import check_count
from gos_web_socket.settings.models import LimitsSettings

logger = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]
Failed = Callable[[str, Exception], None]
"""Called with a job's error (reason, exception): the connection closes."""
Spawn = Callable[[Coroutine[Any, Any, Any]], "asyncio.Task[Any]"]


def _nobody(reason: str, error: Exception) -> None:
    """A released queue's failures: its connection is gone, there is nobody to close."""
    logger.debug("a job failed after its connection's departure: %s", reason)


class JobQueue:
    """A connection's jobs in arrival order; ``put`` and ``put_call`` enforce the budgets."""

    __slots__ = ("_failed", "_jobs", "_limits", "_owner", "_spawn", "_worker", "pending_calls")

    def __init__(self, owner: str, spawn: Spawn, limits: LimitsSettings, failed: Failed) -> None:
        self._owner = owner
        self._spawn = spawn
        self._failed = failed
        self._limits = limits
        self._jobs: deque[Job] | None = None
        """Made for a burst and dropped once it is done: an idle connection holds none."""
        self._worker: asyncio.Task[None] | None = None
        self.pending_calls = 0
        """RPC calls queued or running (``server.limits.max_pending_calls``)."""

    def release(self) -> None:
        """The connection's departure is done: let go of its ``failed`` callback (the
        connection holds this queue: a reference cycle)."""
        self._failed = _nobody

    def put(self, job: Job) -> None:
        """Queue ``job``; raises ``LimitExceeded`` (``max_queued_jobs``) when the queue is full."""
        jobs = self._jobs
        if jobs is None:
            jobs = self._jobs = deque()
        check_count("max_queued_jobs", len(jobs), self._limits.max_queued_jobs, "queued messages")
        jobs.append(job)
        if self._worker is None:
            self._worker = self._spawn(self._work())

    def put_call(self, job: Job) -> None:
        """``put`` an RPC call, counted in ``pending_calls`` until it is answered.

        Raises:
            LimitExceeded: ``max_pending_calls`` or ``max_queued_jobs`` would be passed.
        """
        limit = self._limits.max_pending_calls
        check_count("max_pending_calls", self.pending_calls, limit, "calls not answered")

        async def call() -> None:
            try:
                await job()
            finally:
                self.pending_calls -= 1

        self.put(call)
        self.pending_calls += 1

    def clear(self) -> None:
        """Drop the jobs not started yet (the connection is closing)."""
        if self._jobs is not None:
            self._jobs.clear()

    @property
    def idle(self) -> bool:
        """No job waits and no worker runs."""
        return self._worker is None and not self._jobs

    async def _work(self) -> None:
        """Run the jobs; every ``messages_per_turn`` jobs, yield to the loop (fairness: a job
        that never awaits would otherwise let one client's burst hold the loop)."""
        done = 0
        jobs = self._jobs
        per_turn = self._limits.messages_per_turn
        try:
            while jobs:
                job = jobs.popleft()
                try:
                    await job()
                except ProtocolError as exc:  # the client's fault: closed, one log line
                    self._failed(str(exc), exc)
                except Exception as exc:
                    extra = {"conn_id": self._owner}
                    logger.error(
                        "connection %s: unexpected error: %r", self._owner, exc, extra=extra
                    )
                    logger.debug("traceback", exc_info=True)
                    self._failed(f"server error: {exc}", exc)
                done += 1
                if done % per_turn == 0:
                    await asyncio.sleep(0)
        finally:
            self._worker = None
            if not self._jobs:
                self._jobs = None
