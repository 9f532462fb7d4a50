"""Event names, event classes and the dispatcher (priorities, sync and async listeners)."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from gos_web_socket.app.exceptions import FailedPush

logger = logging.getLogger(__name__)

SERVER_LAUNCHED = "gos_web_socket.server_launched"
CLIENT_CONNECTED = "gos_web_socket.client_connected"
CLIENT_DISCONNECTED = "gos_web_socket.client_disconnected"
CLIENT_ERROR = "gos_web_socket.client_error"
CLIENT_REJECTED = "gos_web_socket.client_rejected"
CONNECTION_REJECTED = "gos_web_socket.connection_rejected"
PUSH_SUCCESS = "gos_web_socket.push_success"
PUSH_FAIL = "gos_web_socket.push_fail"


class Sender(Protocol):
    """The pusher or push handler behind a push event, as a listener reads it: its alias.
    Typed by what is read, so events import no transport (transports import events)."""

    name: str


@dataclass
class Event:
    """Base event; a listener may stop the others from seeing it."""

    propagation_stopped: bool = field(default=False, init=False)

    def stop_propagation(self) -> None:
        self.propagation_stopped = True


@dataclass
class ServerLaunchedEvent(Event):
    """The server listens; ``server`` is the running WAMP server, ``profile`` the -m flag."""

    loop: asyncio.AbstractEventLoop
    server: Any
    profile: bool = False


@dataclass
class ClientEvent(Event):
    """A client connection opened or closed."""

    connection: Any


@dataclass
class ClientConnectedEvent(ClientEvent):
    pass


@dataclass
class ClientDisconnectedEvent(ClientEvent):
    pass


@dataclass
class ClientErrorEvent(ClientEvent):
    """A connection's frame or a user hook failed; ``error`` says how."""

    error: BaseException


@dataclass
class ClientRejectedEvent(Event):
    """Deprecated in GOS, kept for listeners that still use it: a refused Origin."""

    origin: str
    request: Any = None


@dataclass
class ConnectionRejectedEvent(Event):
    """A connection refused by the origin or IP check; ``request`` is None before HTTP."""

    connection: Any
    request: Any = None

    @property
    def has_request(self) -> bool:
        return self.request is not None


@dataclass
class PushHandlerEvent(Event):
    """The raw transport body and the handler that received it."""

    message: str
    push_handler: Sender


@dataclass
class PushHandlerSuccessEvent(PushHandlerEvent):
    """The push reached the topic's ``on_push`` without an error."""


@dataclass
class PushHandlerFailEvent(PushHandlerEvent):
    """The push could not be decoded, routed or handled; ``error`` is why."""

    error: BaseException | None = None


@dataclass
class PusherFailEvent(Event):
    """A background push (``confirm_mode: background``) failed after ``push_sync()`` returned.

    Fired under ``push_fail`` on the pusher's event loop (its private loop thread for sync
    callers), once per failed push; ``flush()`` / ``close()`` then list it in their
    ``PushFailed``. ``message`` and ``error`` read as on ``PushHandlerFailEvent``.
    """

    message: str
    pusher: Sender
    failure: FailedPush

    @property
    def error(self) -> BaseException:
        return self.failure.error


Listener = Callable[[Any], None] | Callable[[Any], Awaitable[None]]


class EventDispatcher:
    """Calls listeners by descending priority, awaiting the async ones in turn.

    A listener that raises is logged and the others still run: one bad listener
    must not break the push path.
    """

    def __init__(self) -> None:
        self._listeners: dict[str, list[tuple[int, int, Listener]]] = {}
        self._seq = 0

    def add_listener(self, event_name: str, listener: Listener, priority: int = 0) -> None:
        self._seq += 1
        entries = self._listeners.setdefault(event_name, [])
        # Sort key: higher priority first, then registration order.
        entries.append((-priority, self._seq, listener))
        entries.sort(key=lambda entry: (entry[0], entry[1]))

    def remove_listener(self, event_name: str, listener: Listener) -> None:
        entries = self._listeners.get(event_name, [])
        self._listeners[event_name] = [e for e in entries if e[2] is not listener]

    def listeners(self, event_name: str) -> list[Listener]:
        return [entry[2] for entry in self._listeners.get(event_name, [])]

    def has_listeners(self, event_name: str) -> bool:
        return bool(self._listeners.get(event_name))

    async def dispatch(self, event_name: str, event: Event) -> Event:
        for listener in self.listeners(event_name):
            if event.propagation_stopped:
                break
            try:
                result = listener(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("listener %r for %s failed", listener, event_name)
        return event


def register_listeners(
    dispatcher: EventDispatcher,
    listeners: Iterable[tuple[str, Listener] | tuple[str, Listener, int]],
) -> EventDispatcher:
    """Attach listeners given as ``(event_name, listener[, priority])`` tuples.

    This is how the container feeds the dispatcher from its ``event_listeners`` collection.
    """
    for entry in listeners:
        priority = entry[2] if len(entry) == 3 else 0
        dispatcher.add_listener(entry[0], entry[1], priority)
    return dispatcher
