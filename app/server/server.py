"""The WAMP server (v1 and v2): listening socket, live connections, push entry point, lifecycle.

It receives its collaborators from the container (``containers.py``: the history, the topic
manager, the broker, the guard, the authenticator) and hands each part the few it needs:
connections get ``ConnectionServices``, sessions the ``Broker``, topics their wire formats.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from gos_web_socket.app.close_codes import CLOSE_GOING_AWAY
from gos_web_socket.app.events import SERVER_LAUNCHED, EventDispatcher, ServerLaunchedEvent
from gos_web_socket.app.exceptions import ListenError
from gos_web_socket.app.registry import ServerPushHandlerRegistry
from gos_web_socket.app.server.compression import accept_offer
from gos_web_socket.app.server.connection import (
    ConnectionServices,
    WampConnection,
    WampServerFactory,
)
from gos_web_socket.app.server.subprotocols import Subprotocols
from gos_web_socket.app.server.timers import PeriodicTimers
from gos_web_socket.app.server.topic import Topic
from gos_web_socket.app.stats import ServerStats
from gos_web_socket.app.transports.supervisor import Supervisor
from gos_web_socket.settings.models import Settings

if TYPE_CHECKING:
    from gos_web_socket.app.auth.authenticator import Authenticator
    from gos_web_socket.app.history import HistoryStore
    from gos_web_socket.app.push import Push
    from gos_web_socket.app.router import Router
    from gos_web_socket.app.server.broker import Broker
    from gos_web_socket.app.server.guard import Guard
    from gos_web_socket.app.server.manager import TopicManager
    from gos_web_socket.app.transports.handler import ServerPushHandler

logger = logging.getLogger(__name__)

HISTORY_SWEEP = 30.0
"""Seconds between sweeps of channel histories emptied by their ttl."""

T = TypeVar("T")

Readiness = Callable[["WampServer"], tuple[bool, dict[str, Any]]]
"""Whether a server is ready, and a JSON body saying why (``app.ops.readiness``)."""


class WampServer:
    """Serves WAMP v1 and v2 to browsers and receives pushes from the push handlers.

    Construction does no I/O; ``start()`` binds, ``stop()`` closes everything within
    ``settings.server.shutdown_timeout`` seconds, ``run()`` does both around SIGINT/SIGTERM.
    """

    def __init__(
        self,
        settings: Settings,
        router: Router,
        dispatcher: EventDispatcher,
        push_handlers: ServerPushHandlerRegistry[ServerPushHandler],
        history: HistoryStore,
        manager: TopicManager,
        broker: Broker,
        guard: Guard,
        authenticator: Authenticator,
        profile: bool = False,
        readiness: Readiness | None = None,
        reuse_port: bool = False,
    ) -> None:
        self.settings = settings
        self.reuse_port = reuse_port
        """SO_REUSEPORT: several worker processes share the port (``server.workers``)."""
        self.readiness = readiness
        """Answers a plain ``GET /health`` on the WebSocket port (where load balancers probe)."""
        self.router = router
        self.dispatcher = dispatcher
        self.push_handlers = push_handlers
        self.profile = profile
        self.host = settings.server.host
        self.port = settings.server.port
        self.guard = guard
        self.history = history
        """Channel histories; positions are the stream's in stream mode, else this process's."""
        self.manager = manager
        self.authenticator = authenticator
        """Who each connection is (``connection.user``)."""
        self.broker = broker
        self.subprotocols = Subprotocols(
            self.broker,
            self.frame,
            settings.server.realm,
            settings.server.max_message_size,
            settings.server.limits.json_max_depth,
        )
        self.timers = PeriodicTimers("server")
        self._factory: WampServerFactory | None = None
        self._listener: asyncio.Server | None = None
        self._connections: set[WampConnection] = set()
        self._all_closed = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._all_closed.set()
        self.stats = ServerStats()
        self._unflushed: list[WampConnection] = []
        self._flush_done: asyncio.Future[None] | None = None

    # -- what connections and topics use --------------------------------------------------

    @property
    def connections(self) -> int:
        """How many clients have an open WAMP session."""
        return len(self._connections)

    @property
    def live_connections(self) -> frozenset[WampConnection]:
        """The clients with an open WebSocket (the connection repository reads them)."""
        return frozenset(self._connections)

    @property
    def accepting(self) -> bool:
        """True while the listening socket takes new connections (health checks read this)."""
        return self._listener is not None and self._listener.is_serving()

    @property
    def topics(self) -> Mapping[str, Topic]:
        """Live topics by channel (each has at least one subscriber)."""
        return self.manager.topics

    def frame(self, payload: bytes, binary: bool = False) -> bytes:
        """The wire bytes of one unmasked text (or binary) frame, built once (prepareMessage)."""
        if self._factory is None:
            raise RuntimeError("the server is not started")
        return self._factory.frame(payload, binary)

    def schedule_flush(self, connection: WampConnection) -> None:
        """Have ``connection.flush()`` run at the end of this loop turn (once per turn)."""
        if not self._unflushed:
            asyncio.get_running_loop().call_soon(self._flush)
        self._unflushed.append(connection)

    def _flush(self) -> None:
        connections, self._unflushed = self._unflushed, []
        done, self._flush_done = self._flush_done, None
        for connection in connections:
            connection.flush()
        if done is not None and not done.done():
            done.set_result(None)

    async def flushed(self) -> None:
        """Return once every frame queued so far was handed to its client's transport."""
        if not self._unflushed:
            return
        if self._flush_done is None:
            self._flush_done = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._flush_done)

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run ``coro`` as a task the server keeps until it finishes (and cancels on stop)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def register(self, connection: WampConnection) -> None:
        self._connections.add(connection)
        self._all_closed.clear()

    def unregister(self, connection: WampConnection) -> None:
        self._connections.discard(connection)
        if not self._connections:
            self._all_closed.set()

    # -- pushes -----------------------------------------------------------------------------

    async def on_push(self, push: Push) -> None:
        """Hand a routed push to its topic's ``on_push`` (``PushableServer``).

        Raises:
            TopicNotFound: no topic handler is registered for the route callback.
            PushUnsupported: the handler is not a ``PushableTopic``.
            FirewallRejection: a ``SecuredTopic`` refused the push.
            Exception: whatever the topic's ``on_push`` raised.
        """
        request = push.request
        logger.debug(
            "pusher %s pushed to %s (%s)",
            push.provider,
            request.matched,
            push.mode.value,
            extra={"handler": push.provider, "route": request.route_name},
        )
        await self.broker.push(push)

    # -- lifecycle --------------------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext | None:
        tls = self.settings.server.tls
        if not tls.enabled:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        assert tls.certfile is not None  # the settings model requires it when enabled
        context.load_cert_chain(tls.certfile, tls.keyfile)
        return context

    def _connection_services(self) -> ConnectionServices:
        return ConnectionServices(
            guard=self.guard,
            dispatcher=self.dispatcher,
            stats=self.stats,
            max_outgoing_buffer=self.settings.server.max_outgoing_buffer,
            slow_reader_timeout=self.settings.server.slow_reader_timeout,
            spawn=self.spawn,
            schedule_flush=self.schedule_flush,
            register=self.register,
            unregister=self.unregister,
            choose_session=self.subprotocols.choose,
            leave=self.broker.leave,
            health=None if self.readiness is None else self._health,
            authenticator=self.authenticator,
            limits=self.settings.server.limits,
            max_message_size=self.settings.server.max_message_size,
        )

    def _health(self) -> tuple[bool, dict[str, Any]]:
        assert self.readiness is not None
        return self.readiness(self)

    def _build_factory(self, host: str, secure: bool) -> WampServerFactory:
        server = self.settings.server
        url_host = f"[{host}]" if ":" in host else host
        url = f"{'wss' if secure else 'ws'}://{url_host}"
        factory = WampServerFactory(self._connection_services(), url)
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

    async def start(self, host: str | None = None, port: int | None = None) -> None:
        """Listen, announce ``server_launched`` and start every push handler.

        ``port=0`` binds a free port; ``self.port`` holds the real one afterwards. Push
        handlers run under ``self.supervisor``: one that cannot start yet is retried.
        """
        if self._listener is not None:
            raise RuntimeError("the server is already started")
        loop = asyncio.get_running_loop()
        host = host or self.settings.server.host
        port = self.settings.server.port if port is None else port
        context = self._ssl_context()
        self._factory = self._build_factory(host, context is not None)
        try:
            # server.listen_backlog (asyncio's default is 100): a mass reconnect beyond the
            # backlog is SYN-retried for seconds, and its handshake timeout starts that late.
            self._listener = await loop.create_server(
                self._factory,
                host,
                port,
                ssl=context,
                backlog=self.settings.server.listen_backlog,
                reuse_port=self.reuse_port or None,
            )
        except OSError as exc:
            raise ListenError("server.port", host, port, exc) from exc
        self.host, self.port = host, self._listener.sockets[0].getsockname()[1]
        self._all_closed.set()
        logger.info("Launching WAMP server on %s:%s (pid %s)", host, self.port, os.getpid())
        event = ServerLaunchedEvent(loop=loop, server=self, profile=self.profile)
        await self.dispatcher.dispatch(SERVER_LAUNCHED, event)
        self.supervisor = Supervisor(self.push_handlers, self)  # retries until each consumes
        await self.supervisor.start()
        self.timers.add("history-sweep", HISTORY_SWEEP, self.history.sweep)

    async def stop(self) -> None:
        """Stop accepting, close the push handlers, close clients with 1001, then return.

        Clients that do not finish the closing handshake within ``shutdown_timeout`` seconds
        are dropped.
        """
        timeout = self.settings.server.shutdown_timeout
        if self._listener is not None:
            self._listener.close()
        self.timers.cancel_all()
        supervisor: Supervisor | None = getattr(self, "supervisor", None)  # None: never started
        if supervisor is not None:
            await supervisor.close(timeout)
        for connection in list(self._connections):
            connection.close(CLOSE_GOING_AWAY, "server shutting down")
        try:
            await asyncio.wait_for(self._all_closed.wait(), timeout)
        except TimeoutError:
            logger.warning("%d client(s) did not close in time; dropping", self.connections)
            for connection in list(self._connections):
                connection.dropConnection(abort=True)
        pending = [task for task in self._tasks if not task.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)
            for task in pending:
                task.cancel()
        self.manager.clear()
        if self._listener is not None:
            await self._listener.wait_closed()
            self._listener = None
        logger.info("WAMP server stopped")
