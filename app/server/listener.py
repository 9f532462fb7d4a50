"""The server's listening socket: TLS, autobahn's factory with our protocol options, bind, close,
and the admission of new connections (``HandshakeBudget``, ``Acceptor``).

Every autobahn factory option the server sets is here; ``WampServer`` only says when to listen.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
from collections.abc import Callable
from typing import Any

from gos_web_socket.app.exceptions import ListenError
from gos_web_socket.app.server.compression import accept_offer
from gos_web_socket.app.server.connection import ConnectionServices, WampServerFactory
from gos_web_socket.settings.models import ServerSettings

logger = logging.getLogger(__name__)

ACCEPT_BATCH = 64
"""Connections accepted per readiness of the socket: the loop reads between two batches."""
ACCEPT_RETRY = 1.0
"""Seconds accepting stops after the process ran out of files or memory (as asyncio does)."""
_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


class HandshakeBudget:
    """At most ``allowed`` opening handshakes in progress, ``limit`` at most
    (``server.limits.handshakes_in_progress``).

    A mass reconnect (every client of a restarted node or a reloaded load balancer at once)
    arrives far faster than one process finishes handshakes. Accepted all at once, each
    handshake waits behind all the others, the opening-handshake timeout drops them with their
    work half done, the clients retry, and the storm never converges. With the budget full the
    ``Acceptor`` stops accepting: later clients wait in the kernel's accept queue, where no
    timeout runs and nothing is spent on them, and are accepted as handshakes end (opened,
    refused or lost).

    How many handshakes finish inside the timeout depends on the CPU the process gets, which a
    fixed number cannot know: eight workers on two busy cores get a fraction of one each, and
    2,048 handshakes then take longer than 5 s. So while handshakes are in progress the budget
    watches its loop's lag (``watch``): a loop late by more than ``late`` cuts ``allowed`` to
    ``late / lag`` of itself, at most half and at least ``FLOOR``, and a prompt one lets it
    grow back by ``FLOOR`` a look towards ``limit`` (slowly: a storm's next wave must not undo
    the cut at once). The signal is the process's own lateness, which a client cannot fake by
    being slow. ``late`` is 40 ms by default, not a share of the timeout: the pushes to the
    clients already connected wait for every loop turn the handshakes hold, so a storm is
    admitted at the pace that keeps them on time (bench/results/issue27/storm-gc/).
    """

    FLOOR = 16
    PROBE = 0.1
    """Seconds between two looks at the loop's lag while handshakes are in progress."""

    def __init__(self, limit: int, late: float = 0.04) -> None:
        self.limit = limit
        self.allowed = limit
        """The handshakes admitted at once now (``limit`` while the loop keeps up)."""
        self.late = late
        """A loop this late (seconds, ``server.limits.handshake_lag``) is doing too many
        handshakes: the pushes wait behind them, and past some point the handshakes' own
        timeouts run out."""
        self.on_room: Callable[[], None] | None = None
        """Called when a handshake ends (the ``Acceptor`` accepts again)."""
        self._running: set[object] = set()
        self._probe: asyncio.TimerHandle | None = None
        self.full_total = 0
        """Times the budget filled up and accepting stopped (``handshake_budget_full``)."""
        self.cut_total = 0
        """Times a late loop cut ``allowed`` (``handshake_budget_cut``)."""

    @property
    def in_progress(self) -> int:
        return len(self._running)

    @property
    def room(self) -> int:
        """Handshakes that may start now."""
        return self.allowed - len(self._running)

    def arrive(self, connection: object) -> None:
        """A connection was accepted: its handshake is in progress."""
        self._running.add(connection)
        if self._probe is None and self.limit > self.FLOOR:
            self._schedule()

    def finish(self, connection: object) -> None:
        """The connection's handshake ended: accepting may go on. Idempotent: every end of a
        connection may call it."""
        if connection in self._running:
            self._running.discard(connection)
            if self.on_room is not None:
                self.on_room()

    def watch(self, lag: float) -> None:
        """The loop ran ``lag`` seconds late: cut ``allowed`` when that is too late for the
        handshakes in progress, grow it back by ``FLOOR`` when the loop is prompt."""
        if lag > self.late:
            if self.allowed > self.FLOOR:
                share = min(0.5, self.late / lag)  # late by 8 times that: an eighth
                self.allowed = max(self.FLOOR, int(self.allowed * share))
                self.cut_total += 1
        elif lag < self.late / 4 and self.allowed < self.limit:
            self.allowed = min(self.limit, self.allowed + self.FLOOR)
            if self.on_room is not None:
                self.on_room()

    def _schedule(self) -> None:
        loop = asyncio.get_running_loop()
        self._probe = loop.call_later(self.PROBE, self._look, loop.time() + self.PROBE)

    def _look(self, due: float) -> None:
        self._probe = None
        self.watch(asyncio.get_running_loop().time() - due)
        if self._running or self.allowed < self.limit:
            self._schedule()

    def close(self) -> None:
        """Stop watching the loop (the listener closed)."""
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None


class Acceptor:
    """Accepts on the listening sockets while the handshake budget has room, and stops while
    it is full: a storm then waits in the kernel's accept queue (``server.listen_backlog``, then
    SYN retries), costing nothing here. asyncio's own server accepts a whole backlog per
    readiness, thousands of connections set up before any of their handshakes is read, so the
    first ones' handshake timeouts ran out while the rest were still being accepted.
    """

    def __init__(
        self,
        sockets: list[socket.socket],
        factory: Callable[[], asyncio.Protocol],
        context: ssl.SSLContext | None,
        budget: HandshakeBudget,
    ) -> None:
        self.sockets = sockets
        self._factory = factory
        self._context = context
        self._budget = budget
        self._loop = asyncio.get_running_loop()
        self._opening: set[asyncio.Task[Any]] = set()
        """Accepted sockets whose transport is being made: they count against the budget."""
        self._reading = False
        self._closed = False
        self._retry: asyncio.TimerHandle | None = None
        budget.on_room = self.resume

    @property
    def serving(self) -> bool:
        return not self._closed

    def _room(self) -> int:
        return self._budget.room - len(self._opening)

    def resume(self) -> None:
        """Watch the sockets again (the budget has room)."""
        if self._reading or self._closed or self._retry is not None or self._room() <= 0:
            return
        self._reading = True
        for sock in self.sockets:
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    def pause(self) -> None:
        """Stop watching the sockets; what arrives waits in the kernel's accept queue."""
        if not self._reading:
            return
        self._reading = False
        for sock in self.sockets:
            self._loop.remove_reader(sock.fileno())

    def _accept(self, sock: socket.socket) -> None:
        for _ in range(ACCEPT_BATCH):
            if self._room() <= 0:
                self._budget.full_total += 1
                self.pause()
                return
            try:
                conn, _address = sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno not in _OUT_OF_RESOURCES:
                    logger.debug("accept failed: %r", exc)
                    return
                logger.warning("accept failed (%s); accepting again in %s s", exc, ACCEPT_RETRY)
                self.pause()
                self._retry = self._loop.call_later(ACCEPT_RETRY, self._retried)
                return
            conn.setblocking(False)
            task = self._loop.create_task(self._open(conn))
            self._opening.add(task)
            task.add_done_callback(self._opened)

    async def _open(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._factory, conn, ssl=self._context)
        except (OSError, ssl.SSLError, TimeoutError) as exc:  # a TLS handshake or a reset
            logger.debug("an accepted connection failed before it opened: %r", exc)
            conn.close()

    def _opened(self, task: asyncio.Task[Any]) -> None:
        self._opening.discard(task)
        self.resume()

    def _retried(self) -> None:
        self._retry = None
        self.resume()

    def close(self) -> None:
        """Stop accepting and close the sockets; the connections stay open."""
        self._closed = True
        self.pause()
        self._budget.close()
        if self._retry is not None:
            self._retry.cancel()
        for task in self._opening:
            task.cancel()
        for sock in self.sockets:
            sock.close()


async def bind(host: str, port: int, backlog: int, reuse_port: bool) -> list[socket.socket]:
    """Listening, non-blocking sockets on every address of ``host`` (as asyncio binds them).

    Raises:
        OSError: an address could not be bound (the sockets bound so far are closed).
    """
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _name, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class Listener:
    """One listening socket and the factory that builds its connections (``server.*``)."""

    def __init__(self, settings: ServerSettings, reuse_port: bool = False) -> None:
        self.settings = settings
        self.reuse_port = reuse_port
        """SO_REUSEPORT: several worker processes share the port (``server.workers``)."""
        self._factory: WampServerFactory | None = None
        self._acceptor: Acceptor | None = None
        self._handshakes: HandshakeBudget | None = None

    @property
    def listening(self) -> bool:
        """True from ``listen`` until ``wait_closed`` returned."""
        return self._acceptor is not None

    @property
    def serving(self) -> bool:
        """True while the socket takes new connections (health checks read this)."""
        return self._acceptor is not None and self._acceptor.serving

    @property
    def handshakes(self) -> HandshakeBudget | None:
        """The handshake budget of the listening factory (None before ``listen``)."""
        return self._handshakes

    @property
    def churning(self) -> bool:
        """Clients arrive or leave in numbers: ``HandshakeBudget.FLOOR`` handshakes or more in
        progress, or departures waiting for a later loop turn (a mass drop)."""
        if self._factory is None or self._handshakes is None:
            return False
        arriving = self._handshakes.in_progress >= HandshakeBudget.FLOOR
        return arriving or self._factory.lifecycle.departures.waiting > 0

    def frame(self, payload: bytes, binary: bool = False) -> bytes:
        """The wire bytes of one unmasked text (or binary) frame, built once (prepareMessage)."""
        if self._factory is None:
            raise RuntimeError("the server is not started")
        return self._factory.frame(payload, binary)

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of ``server.tls``, or None when TLS is off."""
        tls = self.settings.tls
        if not tls.enabled:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        assert tls.certfile is not None  # the settings model requires it when enabled
        context.load_cert_chain(tls.certfile, tls.keyfile)
        return context

    def build_factory(
        self, services: ConnectionServices, host: str, secure: bool
    ) -> WampServerFactory:
        """Autobahn's factory for ``host`` with the limits, keepalive and compression we use."""
        server = self.settings
        url_host = f"[{host}]" if ":" in host else host
        url = f"{'wss' if secure else 'ws'}://{url_host}"
        factory = WampServerFactory(services, url)
        limits = server.limits
        self._handshakes = HandshakeBudget(limits.handshakes_in_progress, limits.handshake_lag)
        factory.handshakes = self._handshakes
        keepalive = server.keepalive_interval if server.keepalive_ping else 0
        factory.setProtocolOptions(
            maxFramePayloadSize=server.max_frame_size,
            maxMessagePayloadSize=server.max_message_size,
            # Send a close frame with the code (1007, 1009) instead of dropping TCP.
            failByDrop=False,
            # The origin check is ours (in onConnect); autobahn must let every origin through.
            allowedOrigins=["*"],
            allowNullOrigin=True,
            # GOS keepalive: a ping every interval; no pong by the next one closes.
            autoPingInterval=keepalive,
            autoPingTimeout=keepalive,
            # From accept to a finished handshake (server.limits.handshake_timeout); the
            # Acceptor accepts no more than HandshakeBudget lets finish inside it.
            openHandshakeTimeout=server.limits.handshake_timeout,
        )
        if server.compression:  # permessage-deflate, EVENTs compressed once per broadcast
            factory.setProtocolOptions(
                perMessageCompressionAccept=accept_offer, allowNullOrigin=True
            )
        return factory

    async def listen(self, services: ConnectionServices, host: str, port: int) -> int:
        """Bind ``host:port`` (0: a free port) and return the bound port.

        Raises:
            ListenError: the address could not be bound.
        """
        context = self.ssl_context()
        self._factory = self.build_factory(services, host, context is not None)
        try:
            # server.listen_backlog (asyncio's default is 100): a mass reconnect beyond the
            # backlog is SYN-retried for seconds (while the Acceptor pauses, it waits there).
            sockets = await bind(host, port, self.settings.listen_backlog, self.reuse_port)
        except OSError as exc:
            raise ListenError("server.port", host, port, exc) from exc
        assert self._handshakes is not None  # build_factory made it
        self._acceptor = Acceptor(sockets, self._factory, context, self._handshakes)
        self._acceptor.resume()
        bound: int = sockets[0].getsockname()[1]
        return bound

    def close(self) -> None:
        """Stop accepting; the live connections stay open."""
        if self._acceptor is not None:
            self._acceptor.close()

    async def wait_closed(self) -> None:
        """Return once the socket is closed; ``listen`` may be called again afterwards."""
        if self._acceptor is not None:
            self._acceptor.close()
            await asyncio.sleep(0)  # the cancelled transports in the making end
            self._acceptor = None
