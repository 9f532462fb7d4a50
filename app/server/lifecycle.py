"""A connection's place in its server, from open to gone, and why it was closed.

Opened: registered with the server. Joined (v1: on open, v2: WELCOME sent): ``client_connected``.
Gone (closed or lost, whatever state its handshake was in): unregistered, timers cancelled, out
of every topic, ``client_disconnected`` if it had joined. Failed (what it sent broke the
protocol or a budget): counted once per reason in ``stats.closed``, one log line,
``client_error``. No socket here: the connection calls these from autobahn's callbacks.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from gos_web_socket.app.close_codes import CLOSE_INVALID_PAYLOAD
from gos_web_socket.app.events import (
    CLIENT_CONNECTED,
    CLIENT_DISCONNECTED,
    CLIENT_ERROR,
    ClientConnectedEvent,
    ClientDisconnectedEvent,
    ClientErrorEvent,
    EventDispatcher,
)
from gos_web_socket.app.exceptions import ProtocolError
from gos_web_socket.app.server.client import Client
from gos_web_socket.app.server.jobs import JobQueue
from gos_web_socket.app.stats import ServerStats

logger = logging.getLogger(__name__)


class LifeServices(Protocol):
    """What a connection's lifecycle needs of its server (``ConnectionServices`` has it)."""

    @property
    def dispatcher(self) -> EventDispatcher: ...

    @property
    def stats(self) -> ServerStats: ...

    @property
    def spawn(self) -> Callable[[Coroutine[Any, Any, Any]], Any]: ...

    @property
    def register(self) -> Callable[[Any], None]: ...

    @property
    def unregister(self) -> Callable[[Any], None]: ...

    @property
    def leave(self) -> Callable[[Any], Awaitable[None]]:
        """Unsubscribe a gone connection from every topic it joined (the hooks run)."""


def close_for(error: BaseException | None) -> tuple[int, str]:
    """The close code and the counted reason for closing a client because of ``error``: its
    ``code`` and ``reason`` when it has them, else 1007 and ``protocol_error`` (the client's
    fault) or ``server_error`` (ours)."""
    code: int = getattr(error, "code", CLOSE_INVALID_PAYLOAD)
    why: str = getattr(error, "reason", "")
    if not why:
        failed_us = error is not None and not isinstance(error, ProtocolError)
        why = "server_error" if failed_us else "protocol_error"
    return code, why


class Lifecycle:
    """One connection's states (opened, joined, lost, closed) and the close reason it counted."""

    __slots__ = (
        "_client",
        "_jobs",
        "_services",
        "close_reason",
        "closed",
        "joined",
        "lost",
        "opened",
    )

    def __init__(self, client: Client, services: LifeServices, jobs: JobQueue) -> None:
        self._client = client
        self._services = services
        self._jobs = jobs
        self.opened = self.joined = self.closed = self.lost = False
        self.close_reason = ""
        """Why we closed the client (a ``server.limits`` name, ``invalid_json``...), counted."""

    def open(self) -> None:
        """The handshake is done: the server counts the connection."""
        self.opened = True
        self._services.register(self._client)

    def join(self) -> None:
        """The session is established: ``client_connected`` (after the jobs before it)."""
        self.joined = True
        self._jobs.put(self._connected)

    async def _connected(self) -> None:
        await self._services.dispatcher.dispatch(
            CLIENT_CONNECTED, ClientConnectedEvent(self._client)
        )

    def gone(self) -> None:
        """Unregister the connection, cancel its timers and leave its topics; idempotent."""
        self.lost = True
        if not self.opened or self.closed:
            return
        self.closed = True
        self._client.stop_timers()
        self._services.unregister(self._client)
        self._jobs.clear()
        self._jobs.put(self._leave)

    async def _leave(self) -> None:
        await self._services.leave(self._client)
        if self.joined:  # a v2 client that never got WELCOME never connected
            event = ClientDisconnectedEvent(self._client)
            await self._services.dispatcher.dispatch(CLIENT_DISCONNECTED, event)

    def count_close(self, reason: str) -> None:
        """One count per closed client in ``stats.closed`` (the metric per reason)."""
        if not self.close_reason:
            self.close_reason = reason
            closed = self._services.stats.closed
            closed[reason] = closed.get(reason, 0) + 1

    def closed_for(self, code: int, why: str, reason: str) -> None:
        """Count and log a close for what the client sent (``why``: the counted reason)."""
        self.count_close(why)
        message = "connection %s closed with %d (%s): %s"
        conn_id = self._client.session_id
        logger.warning(message, conn_id, code, why, reason, extra={"conn_id": conn_id})

    def failed(self, reason: str, error: BaseException | None) -> int:
        """The client is closed because of ``error``: counted, logged, its waiting jobs
        dropped, ``client_error`` fired; returns the close code."""
        code, why = close_for(error)
        self.closed_for(code, why, reason)
        self._jobs.clear()
        event = ClientErrorEvent(connection=self._client, error=error or ProtocolError(reason))
        self._services.spawn(self._services.dispatcher.dispatch(CLIENT_ERROR, event))
        return code
