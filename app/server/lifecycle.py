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
from functools import partial
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
from gos_web_socket.app.server.turn_gate import TurnGate
from gos_web_socket.app.stats import ServerStats
from gos_web_socket.settings.models import LimitsSettings

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
    def limits(self) -> LimitsSettings: ...

    @property
    def leave(self) -> Callable[[Any], Awaitable[None]]:
        """Unsubscribe a gone connection from every topic it joined (the hooks run)."""
        ...


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
    """The lifecycle of one server's connections; each connection's states are its own
    (``Client.opened``, ``established``, ``lost``, ``closed``, ``close_reason``), so an idle
    connection carries no object for them."""

    __slots__ = ("_services", "arrivals", "departures")

    def __init__(self, services: LifeServices) -> None:
        self._services = services
        self.arrivals = TurnGate(services.limits.handshakes_per_turn)
        """Opening handshakes are worked on at most this many a loop turn (a mass reconnect's
        requests, read in one turn, would otherwise hold every push for all of them)."""
        self.departures = TurnGate(services.limits.departures_per_turn)
        """Gone connections leave their topics at most this many a loop turn (a mass drop
        must not stall the pushes to those who stay: turn_gate.py)."""

    def open(self, client: Client) -> None:
        """The handshake is done: the server counts the connection."""
        client.opened = True
        self._services.register(client)

    def join(self, client: Client) -> None:
        """The session is established: ``client_connected`` (after the jobs before it)."""
        client.established = True
        client.enqueue(partial(self._connected, client))

    async def _connected(self, client: Client) -> None:
        event = ClientConnectedEvent(client)
        await self._services.dispatcher.dispatch(CLIENT_CONNECTED, event)

    def gone(self, client: Client) -> None:
        """Unregister the connection, cancel its timers and leave its topics; idempotent."""
        client.lost = True
        if not client.opened or client.closed:
            return
        client.closed = True
        client.stop_timers()
        self._services.unregister(client)
        client.drop_jobs()
        client.enqueue(partial(self._leave, client))

    async def _leave(self, client: Client) -> None:
        await self.departures.enter()
        try:
            await self._services.leave(client)
            if client.established:  # a v2 client that never got WELCOME never connected
                event = ClientDisconnectedEvent(client)
                await self._services.dispatcher.dispatch(CLIENT_DISCONNECTED, event)
        finally:
            client.departed = True
            self.ended(client)

    @staticmethod
    def ended(client: Client) -> None:
        """Release the client once nothing more happens to it: its transport torn down and
        its departure done (or none to come: it never opened)."""
        if client.torn_down and (client.departed or not client.closed):
            client.release()

    def count_close(self, client: Client, reason: str) -> None:
        """One count per closed client in ``stats.closed`` (the metric per reason)."""
        if not client.close_reason:
            client.close_reason = reason
            closed = self._services.stats.closed
            closed[reason] = closed.get(reason, 0) + 1

    def closed_for(self, client: Client, code: int, why: str, reason: str) -> None:
        """Count and log a close for what the client sent (``why``: the counted reason)."""
        self.count_close(client, why)
        message = "connection %s closed with %d (%s): %s"
        conn_id = client.session_id
        logger.warning(message, conn_id, code, why, reason, extra={"conn_id": conn_id})

    def failed(self, client: Client, reason: str, error: BaseException | None) -> int:
        """The client is closed because of ``error``: counted, logged, its waiting jobs
        dropped, ``client_error`` fired; returns the close code."""
        code, why = close_for(error)
        self.closed_for(client, code, why, reason)
        client.drop_jobs()
        event = ClientErrorEvent(connection=client, error=error or ProtocolError(reason))
        self._services.spawn(self._services.dispatcher.dispatch(CLIENT_ERROR, event))
        return code
