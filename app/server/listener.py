"""The server's listening socket: TLS, autobahn's factory with our protocol options, bind, close,
and the admission of new connections (``HandshakeBudget``).

Every autobahn factory option the server sets is here; ``WampServer`` only says when to listen.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Protocol

from gos_web_socket.app.exceptions import ListenError
from gos_web_socket.app.server.compression import accept_offer
from gos_web_socket.app.server.connection import ConnectionServices, WampServerFactory
from gos_web_socket.settings.models import ServerSettings


class Admitted(Protocol):
    """A connection as the budget sees it: held before its handshake starts, then let go."""

    def hold_handshake(self) -> None: ...

    def start_handshake(self) -> None: ...


class HandshakeBudget:
    """At most ``limit`` opening handshakes in progress (``server.limits.handshakes_in_progress``).

    A mass reconnect (every client of a restarted node or a reloaded load balancer at once)
    accepts connections far faster than one process finishes their handshakes. Started all at
    once, each handshake waits behind all the others, the opening-handshake timeout drops them
    with their work half done, the clients retry, and the storm never converges. Beyond the
    budget a connection is held instead: accepted, its request left unread in the kernel, no
    timeout running; it starts, first come first served, when a handshake in progress ends
    (opened, refused or lost). Each started handshake then finishes in about ``limit`` times
    one handshake's CPU, well inside the timeout, whatever the storm's size.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._running: set[Admitted] = set()
        self._waiting: dict[Admitted, None] = {}
        """Held connections in arrival order (a dict: a client leaving is removed at once)."""
        self.held_total = 0
        """Connections that had to wait for a slot (``gos_websocket_handshakes_held_total``)."""

    @property
    def in_progress(self) -> int:
        return len(self._running)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def arrive(self, connection: Admitted) -> None:
        """A connection was accepted: its handshake starts now, or waits for a slot."""
        if len(self._running) < self.limit:
            self._running.add(connection)
            return
        self._waiting[connection] = None
        self.held_total += 1
        connection.hold_handshake()

    def finish(self, connection: Admitted) -> None:
        """The connection's handshake ended (or it left while held): the next one starts.

        Idempotent: every end of a connection may call it."""
        if connection in self._waiting:
            del self._waiting[connection]
            return
        if connection not in self._running:
            return
        self._running.discard(connection)
        while self._waiting and len(self._running) < self.limit:
            following = next(iter(self._waiting))
            del self._waiting[following]
            self._running.add(following)
            following.start_handshake()


class Listener:
    """One listening socket and the factory that builds its connections (``server.*``)."""

    def __init__(self, settings: ServerSettings, reuse_port: bool = False) -> None:
        self.settings = settings
        self.reuse_port = reuse_port
        """SO_REUSEPORT: several worker processes share the port (``server.workers``)."""
        self._factory: WampServerFactory | None = None
        self._server: asyncio.Server | None = None
        self._handshakes: HandshakeBudget | None = None

    @property
    def listening(self) -> bool:
        """True from ``listen`` until ``wait_closed`` returned."""
        return self._server is not None

    @property
    def serving(self) -> bool:
        """True while the socket takes new connections (health checks read this)."""
        return self._server is not None and self._server.is_serving()

    @property
    def handshakes(self) -> HandshakeBudget | None:
        """The handshake budget of the listening factory (None before ``listen``)."""
        return self._handshakes

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
        self._handshakes = HandshakeBudget(server.limits.handshakes_in_progress)
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
            # From admission to a finished handshake (server.limits.handshake_timeout): from
            # accept, or for a connection the HandshakeBudget held, from its start.
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
            # backlog is SYN-retried for seconds, and its handshake timeout starts that late.
            self._server = await asyncio.get_running_loop().create_server(
                self._factory,
                host,
                port,
                ssl=context,
                backlog=self.settings.listen_backlog,
                reuse_port=self.reuse_port or None,
            )
        except OSError as exc:
            raise ListenError("server.port", host, port, exc) from exc
        bound: int = self._server.sockets[0].getsockname()[1]
        return bound

    def close(self) -> None:
        """Stop accepting; the live connections stay open."""
        if self._server is not None:
            self._server.close()

    async def wait_closed(self) -> None:
        """Return once the socket is closed; ``listen`` may be called again afterwards."""
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
