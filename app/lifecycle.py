"""The server process's lifecycle: resources the container starts in order and stops in reverse.

``containers.py`` declares one ``providers.Resource`` per part, each depending on the one
before it, so ``init_resources()`` starts them in this order and ``shutdown_resources()``
stops them in the reverse one::

    pushers      nothing to start (they connect on first push); closed last
    listeners    /metrics and /health, then the demo HTTP page: a port that cannot be bound
                 stops start-up with ListenError before any client is accepted
    presence     its AMQP outbox and node link, then presence itself, closed after the server
    server       the WebSocket listener, then the push handlers under their supervisor

``Runtime`` is what the CLI, the tests and the benchmark start and stop, so all three run the
same process the container describes. Once everything is started, the objects start-up made
(modules, settings, the container, the server) are frozen out of the garbage collector's sight
(``gc.freeze``): a full collection then scans only what came later, such as the connections'
objects, and its pause, which stops every push under way, is that much shorter (docs/bench.md).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from gos_web_socket.app.exceptions import ConfigurationError, ListenError, PortsTaken
from gos_web_socket.app.gc_pacer import GcPacer

if TYPE_CHECKING:
    from gos_web_socket.app.server import WampServer
    from gos_web_socket.app.transports.pusher import Pusher
    from gos_web_socket.settings import Settings

logger = logging.getLogger(__name__)


class Listener(Protocol):
    """A side listener of the server process (the ops port, the demo page)."""

    async def start(self) -> None:
        """Bind, or do nothing when disabled; raises ListenError when the address is taken."""

    async def close(self) -> None: ...


class Resources(Protocol):
    """What ``Runtime`` needs of a container: dependency-injector's resource methods."""

    def init_resources(self) -> Awaitable[None] | None: ...

    def shutdown_resources(self) -> Awaitable[None] | None: ...


async def open_pushers(
    pushers: Mapping[str, Pusher], drain_within: float = 5.0
) -> AsyncIterator[Mapping[str, Pusher]]:
    """The pushers of this process; on the way down, after the server stopped, each finishes
    the pushes under way (at most ``drain_within`` seconds) and is closed."""
    try:
        yield pushers
    finally:
        for name, pusher in pushers.items():
            try:
                await asyncio.wait_for(pusher.drained(), drain_within)
            except TimeoutError:
                logger.warning("pusher %s: pushes still under way after %s s", name, drain_within)
            try:
                await pusher.close()
            except Exception as exc:  # one pusher failing to close must not keep others open
                logger.error("pusher %s did not close: %r", name, exc)


async def listening(listener: Listener, *after: object) -> AsyncIterator[Listener]:
    """``listener`` bound for as long as the resource lives (``after``: resources started first)."""
    await listener.start()
    try:
        yield listener
    finally:
        await listener.close()


class Settling(Protocol):
    """A part with events still under way and timers of its own (presence)."""

    async def settled(self) -> None:
        """Return once the events so far were delivered."""

    def close(self) -> None: ...


async def settling(part: Settling, *after: object) -> AsyncIterator[Settling]:
    """``part`` for as long as the resource lives; on the way down (after the server stopped,
    so its connections' leaves are in) it delivers what is under way, then cancels its timers:
    a stopped server leaves no callback on the loop."""
    try:
        yield part
    finally:
        await part.settled()
        part.close()


async def serving(server: WampServer, *after: object) -> AsyncIterator[WampServer]:
    """The WebSocket server and its push handlers, stopped gracefully on the way down."""
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


class Runtime:
    """Starts and stops the container's resources; ``run()`` serves until SIGINT or SIGTERM."""

    def __init__(self, resources: Resources, server: WampServer) -> None:
        self._resources = resources
        self.server = server
        self.gc = GcPacer(server.settings.server.gc_full_every, lambda: server.churning)
        """The full garbage collections, run when calm (``server.gc_full_every``)."""
        self._started = False
        self._stopping: asyncio.Event | None = None

    async def start(self) -> None:
        """Start every resource; if one fails, those already started are stopped again."""
        self._started = True
        try:
            await _maybe(self._resources.init_resources())
        except BaseException:
            await self.stop()
            raise
        freeze_heap()
        self.gc.start()

    async def stop(self) -> None:
        """Stop every started resource in reverse order; a second call does nothing."""
        if not self._started:
            return
        self._started = False
        self.gc.stop()
        gc.unfreeze()  # what start-up made may be collected again once it is let go
        await _maybe(self._resources.shutdown_resources())

    async def run(self, on_ready: Callable[[], object] | None = None) -> None:
        """Serve until SIGINT, SIGTERM or ``stop_soon()``, then stop everything gracefully.

        The signal handlers go in first: a signal while the push handlers are still starting
        (clients can already connect) must stop the process gracefully too, not kill it.
        ``on_ready`` is called once everything started (a worker reports to its parent).
        """
        loop = asyncio.get_running_loop()
        stopping = self._stopping = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        try:
            await self.start()
            if on_ready is not None:
                on_ready()
            await stopping.wait()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await self.stop()

    def stop_soon(self) -> None:
        """Have ``run()`` stop as on SIGTERM (a worker whose parent is gone)."""
        if self._stopping is not None:
            self._stopping.set()

    async def __aenter__(self) -> Runtime:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.stop()


def freeze_heap() -> None:
    """Collect the young generations, then move every surviving object to the permanent one.

    Start-up leaves some 90,000 tracked objects that live as long as the process; every full
    collection would scan them again (about 30 ms on the project's machine, stopping the loop).
    Objects made later are collected as usual. Not a full collection first: in a process with
    a large heap (a test run) it would cost more than the freeze saves.
    """
    gc.collect(1)
    gc.freeze()


EventLoopFactory = Callable[[], asyncio.AbstractEventLoop]


def event_loop_factory(choice: str) -> EventLoopFactory | None:
    """The loop ``server.event_loop`` asks for (None: asyncio's own).

    ``auto`` takes uvloop when it is installed (the ``fast`` extra), else asyncio.

    Raises:
        ConfigurationError: ``uvloop`` is asked for and not installed.
    """
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "auto":
            return None
        raise ConfigurationError(
            [
                "server.event_loop: 'uvloop' is not allowed: uvloop is not installed "
                "(pip install uvloop, or the [fast] extra; or auto, asyncio)"
            ]
        ) from None
    return uvloop.new_event_loop


async def _maybe(result: Awaitable[None] | None) -> None:
    """dependency-injector returns an awaitable only when some resource is async."""
    if result is not None:
        await result


def listener_ports(settings: Settings) -> list[tuple[str, str, int]]:
    """``(setting, host, port)`` of every listener ``server`` binds itself (port 0 aside)."""
    server, zmq = settings.server, settings.pushers.zmq
    found = [("server.port", server.host, server.port)]
    if server.http.enabled:
        found.append(("server.http", server.http.host, server.http.port))
    if server.metrics.enabled:
        found.append(("server.metrics", server.metrics.host, server.metrics.port))
    if zmq.enabled:
        found.append(("pushers.zmq", zmq.host, zmq.port))
    return [item for item in found if item[2] != 0]


def check_ports(settings: Settings) -> None:
    """Bind and release each listener's port before anything starts.

    Raises:
        PortsTaken: every port that cannot be bound, each naming the variable that moves it
            (a second instance otherwise learns them one failed start at a time).
    """
    errors = []
    for setting, host, port in listener_ports(settings):
        try:
            family, kind, proto, _, address = socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )[0]
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the listeners
                probe.bind(address)
        except OSError as exc:
            errors.append(ListenError(setting, host, port, exc))
    if errors:
        raise PortsTaken(errors)
