"""The WAMP server (v1 and v2): the push entry point and the lifecycle around its parts.

It receives its collaborators from the container (``containers.py``: the history, the topic
manager, the broker, the guard, the authenticator) and hands each part the few it needs:
connections get ``ConnectionServices``, sessions the ``Broker``, topics their wire formats.
The listening socket is a ``Listener`` (listener.py); the open connections, the spawned tasks
and the end-of-turn flush are ``LiveConnections``, ``Tasks`` and ``FlushScheduler`` (live.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from gos_web_socket.app.close_codes import CLOSE_GOING_AWAY
from gos_web_socket.app.events import SERVER_LAUNCHED, EventDispatcher, ServerLaunchedEvent
from gos_web_socket.app.registry import ServerPushHandlerRegistry
from gos_web_socket.app.server.connection import ConnectionServices, WampConnection
from gos_web_socket.app.server.listener import Listener
from gos_web_socket.app.server.live import FlushScheduler, LiveConnections, Tasks
from gos_web_socket.app.server.plain_http import HttpTaker
from gos_web_socket.app.server.subprotocols import Subprotocols
from gos_web_socket.app.server.timers import PeriodicTimers
from gos_web_socket.app.server.topic import Topic
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
        flusher: FlushScheduler,
        profile: bool = False,
        readiness: Readiness | None = None,
        reuse_port: bool = False,
        http: HttpTaker[WampConnection] | None = None,
    ) -> None:
        self.settings = settings
        self.http = http
        """Takes plain HTTP requests on the WebSocket port (the Mercure hub, app/sse)."""
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
        self.listener = Listener(settings.server, reuse_port)
        self.subprotocols = Subprotocols(
            self.broker,
            self.listener.frame,
            settings.server.realm,
            settings.server.max_message_size,
            settings.server.limits.json_max_depth,
        )
        self.timers = PeriodicTimers("server")
        self.live = LiveConnections()
        self.tasks = Tasks()
        self.outgoing = flusher.outgoing
        """Bytes queued to all clients together; pushes wait for room (memory.py)."""
        self.flusher = flusher
        """The end of each loop turn, where topics and connections write (live.py)."""
        self.stats = flusher.stats

    # -- what connections, topics and push handlers use -----------------------------------

    @property
    def reuse_port(self) -> bool:
        """SO_REUSEPORT: several worker processes share the port (``server.workers``)."""
        return self.listener.reuse_port

    @property
    def connections(self) -> int:
        """How many clients have an open WAMP session."""
        return len(self.live)

    @property
    def live_connections(self) -> frozenset[WampConnection]:
        """The clients with an open WebSocket (the connection repository reads them)."""
        return self.live.snapshot()

    @property
    def churning(self) -> bool:
        """Clients arrive or leave in numbers right now (a mass reconnect or drop): the
        garbage collector's pacer waits for calm (app/gc_pacer.py)."""
        return self.listener.churning

    @property
    def accepting(self) -> bool:
        """True while the listening socket takes new connections (health checks read this)."""
        return self.listener.serving

    @property
    def topics(self) -> Mapping[str, Topic]:
        """Live topics by channel (each has at least one subscriber)."""
        return self.manager.topics

    def frame(self, payload: bytes, binary: bool = False) -> bytes:
        """The wire bytes of one unmasked text (or binary) frame, built once (prepareMessage)."""
        return self.listener.frame(payload, binary)

    async def flushed(self) -> None:
        """Return once every frame queued so far was handed to its client's transport."""
        await self.flusher.flushed()

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run ``coro`` as a task the server keeps until it finishes (and cancels on stop)."""
        return self.tasks.spawn(coro)

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
        await self.outgoing.room()  # a burst goes out at the pace clients read it
        await self.broker.push(push)

    # -- lifecycle --------------------------------------------------------------------------

    def connection_services(self) -> ConnectionServices:
        """What each connection gets from the server: the parts it calls, not the server."""
        return ConnectionServices(
            guard=self.guard,
            dispatcher=self.dispatcher,
            stats=self.stats,
            max_outgoing_buffer=self.settings.server.max_outgoing_buffer,
            slow_reader_timeout=self.settings.server.slow_reader_timeout,
            outgoing=self.outgoing,
            spawn=self.tasks.spawn,
            flusher=self.flusher,
            register=self.live.register,
            unregister=self.live.unregister,
            choose_session=self.subprotocols.choose,
            leave=self.broker.leave,
            health=None if self.readiness is None else self._health,
            authenticator=self.authenticator,
            limits=self.settings.server.limits,
            max_message_size=self.settings.server.max_message_size,
            http=self.http,
        )

    def _health(self) -> tuple[bool, dict[str, Any]]:
        assert self.readiness is not None
        return self.readiness(self)

    async def start(self, host: str | None = None, port: int | None = None) -> None:
        """Listen, announce ``server_launched`` and start every push handler.

        ``port=0`` binds a free port; ``self.port`` holds the real one afterwards. Push
        handlers run under ``self.supervisor``: one that cannot start yet is retried.
        """
        if self.listener.listening:
            raise RuntimeError("the server is already started")
        loop = asyncio.get_running_loop()
        host = host or self.settings.server.host
        port = self.settings.server.port if port is None else port
        bound = await self.listener.listen(self.connection_services(), host, port)
        self.host, self.port = host, bound
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
        self.listener.close()
        self.timers.cancel_all()
        supervisor: Supervisor | None = getattr(self, "supervisor", None)  # None: never started
        if supervisor is not None:
            await supervisor.close(timeout)
        await self.live.close_all(CLOSE_GOING_AWAY, "server shutting down", timeout)
        await self.tasks.finish(timeout)
        self.manager.clear()
        await self.listener.wait_closed()
        logger.info("WAMP server stopped")
