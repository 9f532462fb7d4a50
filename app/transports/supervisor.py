"""The supervisor that keeps every push handler consuming while the server runs.

A handler whose ``start()`` fails (the broker is not up yet) or whose receive loop ends on an
error (the connection dropped, a socket failed) is closed, logged with the cause (rate-limited),
and started again after a capped exponential backoff. Each new attempt counts in the handler's
``stats.restarts``; ``is_consuming`` stays false until it consumes again, so /health tells.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from gos_web_socket.app.backoff import Backoff
from gos_web_socket.app.exceptions import ConfigurationError, ListenError
from gos_web_socket.app.logs import RateLimitedLog
from gos_web_socket.app.transports.contract import PushableServer
from gos_web_socket.app.transports.handler import ServerPushHandler

__all__ = ["FATAL_START_ERRORS", "HandlerState", "Supervisor"]

logger = logging.getLogger(__name__)

FATAL_START_ERRORS = (ListenError, ConfigurationError)
"""Errors that retrying cannot fix: raised from ``Supervisor.start()`` on the first attempt."""


@dataclass
class HandlerState:
    """What the supervisor knows about one handler (for logs, tests and operators)."""

    status: str = "starting"
    """``starting``, ``consuming``, ``backoff`` (waiting to retry) or ``closed``."""
    restarts: int = 0
    """Attempts made after a failure (the same number as the handler's ``stats.restarts``)."""
    last_error: str = ""
    """The cause of the last failure, ``repr``-ed; empty until one happened."""
    backoff: float = 0.0
    """Seconds of the last wait before a retry (doubling up to ``max_backoff``)."""


class Supervisor:
    """Starts, watches and restarts push handlers on behalf of the server that owns them.

    Args:
        handlers: the handlers by name (the server's push handler registry).
        app: the server the pushes go to.
        first_backoff: seconds before the first retry; doubled after each failure.
        max_backoff: the cap of the backoff. With the default 8 s a handler consumes at most
            about 8 s (plus one connect) after its transport came back.
        first_attempt_wait: how long ``start()`` waits for the first attempts, so a server
            normally returns from ``start()`` with its handlers consuming; a transport that is
            away does not hold it up longer than this.
        log_interval: at most one warning per handler in this many seconds.
    """

    def __init__(
        self,
        handlers: Mapping[str, ServerPushHandler],
        app: PushableServer,
        *,
        first_backoff: float = 0.5,
        max_backoff: float = 8.0,
        first_attempt_wait: float = 2.0,
        log_interval: float = 30.0,
    ) -> None:
        self.handlers = dict(handlers)
        self.app = app
        self.first_backoff = first_backoff
        self.max_backoff = max_backoff
        self.first_attempt_wait = first_attempt_wait
        self.states = {name: HandlerState() for name in self.handlers}
        self._logs = {name: RateLimitedLog(logger, log_interval) for name in self.handlers}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._first_attempts: dict[str, asyncio.Event] = {}
        self._closing = False
        self._fatal: Exception | None = None

    async def start(self) -> None:
        """Supervise every handler; returns after the first attempts (at most a short wait).

        Raises:
            ListenError, ConfigurationError: a handler's first start failed in a way retrying
                cannot fix (its address is taken); every handler is closed again.
        """
        self._closing = False
        self._fatal = None
        for name, handler in self.handlers.items():
            if name in self._tasks and not self._tasks[name].done():
                continue
            attempted = self._first_attempts[name] = asyncio.Event()
            self._tasks[name] = asyncio.create_task(
                self._supervise(name, handler, attempted), name=f"supervise-{name}"
            )
        waits = [asyncio.create_task(event.wait()) for event in self._first_attempts.values()]
        if waits:
            await asyncio.wait(waits, timeout=self.first_attempt_wait)
            for wait in waits:
                wait.cancel()
        if self._fatal is not None:
            fatal, self._fatal = self._fatal, None
            await self.close()
            raise fatal

    async def close(self, within: float = 10.0) -> None:
        """Stop supervising and close every handler (each bounded by ``within`` seconds)."""
        self._closing = True
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for name, handler in self.handlers.items():
            try:
                await asyncio.wait_for(handler.close(), within)
            except Exception as exc:
                logger.error("push handler %s did not close: %r", name, exc)
            self.states[name].status = "closed"

    async def _supervise(
        self, name: str, handler: ServerPushHandler, attempted: asyncio.Event
    ) -> None:
        state = self.states[name]
        delays = Backoff(self.first_backoff, self.max_backoff)
        consumed_before = False
        while not self._closing:
            state.status = "starting"
            try:
                await handler.start(self.app)
            except FATAL_START_ERRORS as exc:
                if not attempted.is_set():  # start-up: stop it with this one line
                    self._fatal = exc
                    state.status, state.last_error = "closed", repr(exc)
                    attempted.set()
                    return
                logger.error("push handler %s cannot start: %s", name, exc)  # keep trying
                self._failed(name, state, "did not start", exc)
            except Exception as exc:
                attempted.set()
                self._failed(name, state, "did not start", exc)
            else:
                attempted.set()
                if consumed_before:
                    handler.stats.reconnects += 1
                if state.last_error:
                    logger.info("push handler %s consuming again", name, extra={"handler": name})
                consumed_before = True
                state.status = "consuming"
                began = time.monotonic()
                error = await handler.stopped()
                if self._closing or error is None:  # None: someone closed it on purpose
                    state.status = "closed"
                    return
                if time.monotonic() - began >= self.max_backoff:
                    delays.reset()  # it ran a while: this is a fresh failure
                self._failed(name, state, "stopped", error)
            await handler.close()
            delay = delays.next()
            state.status, state.backoff = "backoff", delay
            await asyncio.sleep(delay)
            state.restarts += 1
            handler.stats.restarts += 1

    def _failed(
        self, name: str, state: HandlerState, what: str, error: BaseException | None
    ) -> None:
        state.last_error = repr(error)
        self._logs[name].warning(
            "push handler %s %s: %s; retrying (restart %d)",
            name,
            what,
            error,
            state.restarts + 1,
            handler=name,
        )
