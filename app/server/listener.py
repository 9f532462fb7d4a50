"""The server's listening socket: TLS, autobahn's factory with our protocol options, bind, close.

Every autobahn factory option the server sets is here; ``WampServer`` only says when to listen.
"""

from __future__ import annotations

import asyncio
import ssl

from gos_web_socket.app.exceptions import ListenError
from gos_web_socket.app.server.compression import accept_offer
from gos_web_socket.app.server.connection import ConnectionServices, WampServerFactory
from gos_web_socket.settings.models import ServerSettings


class Listener:
    """One listening socket and the factory that builds its connections (``server.*``)."""

    def __init__(self, settings: ServerSettings, reuse_port: bool = False) -> None:
        self.settings = settings
        self.reuse_port = reuse_port
        """SO_REUSEPORT: several worker processes share the port (``server.workers``)."""
        self._factory: WampServerFactory | None = None
        self._server: asyncio.Server | None = None

    @property
    def listening(self) -> bool:
        """True from ``listen`` until ``wait_closed`` returned."""
        return self._server is not None

    @property
    def serving(self) -> bool:
        """True while the socket takes new connections (health checks read this)."""
        return self._server is not None and self._server.is_serving()

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
            # From accept to a finished handshake (server.limits.handshake_timeout).
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
