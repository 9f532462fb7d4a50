"""ZeroMQ transport: a PUSH pusher and a PULL server push handler (GOS 1.x's ZMQ pair).

Delivery is at-most-once: ZeroMQ has no acknowledgement. Pushers connect, the handler binds
(loopback by default), and every frame is one GOS envelope ``{"topic": ..., "data": ...}``.

Two choices keep a push from ever blocking a web request for long:

- ``ZMQ_IMMEDIATE``: a message is queued only on a completed connection, so with no handler
  listening ``push()`` waits for one up to ``send_timeout`` and then raises ``PushFailed``
  (instead of piling up in a queue nobody will read).
- ``linger``: GOS's default ``-1`` ("flush queued messages on close, however long it takes")
  is bounded here by ``send_timeout``; a value of 0 or more is used as is (milliseconds).
  Closing a socket never blocks; the toolkit's context is terminated at interpreter exit so
  that messages still queued on closed sockets get their (bounded) linger to reach the handler.

No push is lost to a size limit in silence (docs/security.md): the pusher refuses a frame over
``server.limits.zmq_max_message_size`` with ``PushFailed``; the server reads frames from a
foreign peer up to ``OVERSIZE_READ`` times that limit and counts, logs and drops those over it
(libzmq itself cuts a peer off, unread, only beyond that, a guard for memory).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

import zmq
import zmq.asyncio

from gos_web_socket.app.exceptions import ListenError, PushFailed, PushHandlerError
from gos_web_socket.app.logs import RateLimitedLog
from gos_web_socket.app.message import Message
from gos_web_socket.app.position import LocalLog, Position
from gos_web_socket.app.stats import PushHandlerStats
from gos_web_socket.app.transports.contract import Delivery, Receiver
from gos_web_socket.app.transports.handler import ServerPushHandler
from gos_web_socket.app.transports.pusher import Pusher
from gos_web_socket.app.transports.zmq_canary import ZmqMarkers
from gos_web_socket.app.transports.zmq_context import close_socket, open_socket, shared_context

if TYPE_CHECKING:
    from gos_web_socket.app.events import EventDispatcher
    from gos_web_socket.app.router import Router
    from gos_web_socket.settings.models import ZmqSettings

__all__ = [
    "ZmqFanout",
    "ZmqPusher",
    "ZmqReceiver",
    "ZmqServerPushHandler",
    "ZmqSubscriber",
    "endpoint",
    "shared_context",
]

logger = logging.getLogger(__name__)


def endpoint(settings: ZmqSettings) -> str:
    """``protocol://host:port``, exactly as GOS builds it from the same keys."""
    return f"{settings.protocol}://{settings.host}:{settings.port}"


BIND_RETRY = 0.5  # seconds start() retries a port that a closed handler may still hold
FANOUT_WELCOME = b"\x00gos-fanout"
"""What the fan-out's XPUB sends each worker that subscribes (never a JSON envelope): a worker
consumes only once it got it, so its /health turns ready when pushes really reach it."""
FANOUT_STAMP = b"\x00gos-position:"
"""The first part of each frame the fan-out forwards: ``<epoch>:<offset>`` in the parent's log,
so every worker records a push under the same position (one event id, one recovery cursor)."""
FANOUT_HWM = 100_000
"""Frames the fan-out queues per worker before dropping (at-most-once, like ZeroMQ itself)."""
DEFAULT_MAX_MESSAGE_SIZE = 1 << 20
"""``server.limits.zmq_max_message_size``'s default, for pushers and receivers built without it."""
LIMIT_SETTING = "server.limits.zmq_max_message_size"
OVERSIZE_READ = 8
"""A receiver reads frames up to this many times its limit, to count and log those over it;
libzmq (``ZMQ_MAXMSGSIZE``) cuts a peer sending a bigger one off unread, so a foreign peer
cannot make the server hold more than that per connection."""


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class ZmqPusher(Pusher):
    """A PUSH socket connected to the handler; one per pusher, on the pusher's home loop.

    ``persistent: false`` opens a socket for each push and closes it after (GOS's per-request
    context), which costs a TCP connect per push; the default keeps one socket.
    ``context`` is accepted and ignored, as in GOS. ``max_message_size`` is the server's
    ``server.limits.zmq_max_message_size``: a bigger frame would be dropped there, so the push
    is refused here instead.
    """

    name = "zmq"
    reads_context = False

    def __init__(
        self,
        settings: ZmqSettings,
        router: Router,
        dispatcher: EventDispatcher | Callable[[], EventDispatcher] | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        super().__init__(router, settings=settings, dispatcher=dispatcher)
        self.settings = settings
        self.endpoint = endpoint(settings)
        self.max_message_size = max_message_size
        linger = settings.linger if settings.linger >= 0 else _ms(settings.send_timeout)
        self._options = {
            zmq.IMMEDIATE: 1,
            zmq.SNDTIMEO: _ms(settings.send_timeout),
            zmq.LINGER: linger,
        }
        self._socket: zmq.asyncio.Socket | None = None
        self._fast: zmq.Socket[bytes] | None = None  # the same socket, for non-blocking sends
        self._waiting = 0  # pushes waiting for room; while any do, new ones queue behind them
        shared_context()  # now: its exit flush thread cannot start once the interpreter exits

    def _connect(self) -> zmq.asyncio.Socket:
        sock = open_socket(zmq.PUSH, self._options)
        try:
            sock.connect(self.endpoint)
        except zmq.ZMQError:
            close_socket(sock)
            raise
        return sock

    async def send(self, envelope: Message, context: dict[str, Any]) -> None:
        frame = envelope.encode()
        if len(frame) > self.max_message_size:
            raise PushFailed(
                f'push to "{envelope.topic}" is {len(frame)} bytes, over the server\'s '
                f"{LIMIT_SETTING} ({self.max_message_size} bytes): the server would drop it",
                transport=self.name,
            )
        try:
            if self.settings.persistent:
                await self._send(frame)
            else:
                sock = self._connect()
                try:
                    await sock.send(frame)
                finally:
                    close_socket(sock)
        except zmq.Again as exc:
            raise PushFailed(
                f"no ZeroMQ peer at {self.endpoint} took the push within "
                f"{self.settings.send_timeout} s (is the server running?)",
                transport=self.name,
            ) from exc
        except zmq.ZMQError as exc:
            raise PushFailed(
                f"ZeroMQ push to {self.endpoint} failed: {exc}", transport=self.name
            ) from exc

    async def _send(self, frame: bytes) -> None:
        """Send on the kept socket: a plain non-blocking send when there is room (the common
        case, without a Future), else an awaited send that SNDTIMEO bounds."""
        if self._socket is None or self._fast is None:
            self._socket = self._connect()
            self._fast = zmq.Socket.shadow(self._socket.underlying)
        if not self._waiting:
            try:
                self._fast.send(frame, zmq.DONTWAIT)
                return
            except zmq.Again:
                pass
        self._waiting += 1
        try:
            await self._socket.send(frame)
        finally:
            self._waiting -= 1

    async def disconnect(self) -> None:
        """Close the socket; queued messages get the bounded linger to reach the handler."""
        self.forget_connection()

    def forget_connection(self) -> None:
        """Close the socket without waiting (it is not bound to a loop's I/O)."""
        sock, self._socket, self._fast = self._socket, None, None
        if sock is not None:
            close_socket(sock)


class ZmqReceiver(Receiver):
    """A PULL socket bound to the endpoint; each frame (parts joined) is one delivery.

    ZeroMQ has no acknowledgement, so ``ack`` and ``reject`` do nothing: a frame that cannot be
    delivered fires ``push_fail`` and is dropped (at-most-once). A frame over
    ``max_message_size`` is dropped before decoding, counted in ``oversize`` and logged (at
    most once a minute, with the count since).
    """

    max_batch = 64
    """Frames taken per ``receive()`` when more are already waiting."""

    def __init__(
        self, settings: ZmqSettings, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    ) -> None:
        self.settings = settings
        self.endpoint = endpoint(settings)
        self.max_message_size = max_message_size
        """``server.limits.zmq_max_message_size``: bigger frames are counted and dropped."""
        self.stats = PushHandlerStats()
        """``oversize`` counts frames dropped for their size; a handler shares its own."""
        self._oversize_log = RateLimitedLog(logger, interval=60.0)
        self._socket: zmq.asyncio.Socket | None = None
        self._fast: zmq.Socket[bytes] | None = None  # the same socket, for non-blocking reads
        self._pending: asyncio.Future[list[bytes]] | None = None
        self._cancelled = False

    @property
    def is_open(self) -> bool:
        return self._socket is not None and not self._cancelled

    async def open(self) -> None:
        """Bind; frames sent before this are lost (at-most-once)."""
        sock = open_socket(zmq.PULL, {zmq.LINGER: 0, zmq.MAXMSGSIZE: self.read_limit})
        try:
            await self._bind(sock)
        except BaseException:
            close_socket(sock)
            raise
        logger.info("ZMQ transport listening on %s", self.endpoint)
        self._socket, self._cancelled = sock, False
        self._fast = zmq.Socket.shadow(sock.underlying)

    @property
    def read_limit(self) -> int:
        """``ZMQ_MAXMSGSIZE``: frames up to this are read (to be counted); libzmq disconnects a
        peer sending a bigger one, unread."""
        return self.max_message_size * OVERSIZE_READ

    def _accept(self, frame: bytes) -> bool:
        """False for a frame over the limit, which is counted and logged."""
        if len(frame) <= self.max_message_size:
            return True
        self.stats.oversize += 1
        self._oversize_log.warning(
            "ZMQ transport on %s dropped a push of %d bytes, over %s (%d bytes)",
            self.endpoint,
            len(frame),
            LIMIT_SETTING,
            self.max_message_size,
            handler="zmq",
        )
        return False

    async def _bind(self, sock: zmq.asyncio.Socket) -> None:
        """Bind, retrying briefly on EADDRINUSE: libzmq frees a closed listener asynchronously,
        so a handler restarted in the same process may find its port still taken.

        Raises:
            ListenError: the address cannot be bound (taken, not local); retrying will not
                help, so a server's start-up stops with one line naming ``pushers.zmq``.
        """
        deadline = time.monotonic() + BIND_RETRY
        while True:
            try:
                sock.bind(self.endpoint)
                return
            except zmq.ZMQError as exc:
                if exc.errno != zmq.EADDRINUSE or time.monotonic() >= deadline:
                    raise ListenError(
                        "pushers.zmq", self.settings.host, self.settings.port, exc
                    ) from exc
            await asyncio.sleep(0.02)

    async def receive(self) -> Sequence[Delivery]:
        while True:
            frames = await self._frames()
            if not frames:
                return []
            deliveries = (self.delivery(parts) for parts in frames)
            kept = [d for d in deliveries if d is not None and self._accept(d.body)]
            if kept:  # a batch of only oversize frames: wait for the next one
                return kept

    def delivery(self, parts: list[bytes]) -> Delivery | None:
        """One frame's delivery: its parts joined (a pusher may send several)."""
        return Delivery(_join(parts))

    async def _frames(self) -> list[list[bytes]]:
        """The next frames' parts: one awaited, then those already waiting; [] once
        cancelled."""
        sock, fast = self._socket, self._fast
        if sock is None or fast is None or self._cancelled:
            return []
        pending = self._pending = cast("asyncio.Future[list[bytes]]", sock.recv_multipart())
        try:
            parts = await pending
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if self._cancelled and not (task is not None and task.cancelling()):
                return []  # cancel() woke us up
            raise
        except zmq.ZMQError as exc:
            raise PushHandlerError(f"ZMQ transport on {self.endpoint} failed: {exc}") from exc
        finally:
            self._pending = None
        frames = [parts]
        while len(frames) < self.max_batch:
            try:
                frames.append(fast.recv_multipart(zmq.DONTWAIT))
            except zmq.Again:
                break
            except zmq.ZMQError as exc:
                raise PushHandlerError(f"ZMQ transport on {self.endpoint} failed: {exc}") from exc
        return frames

    async def cancel(self) -> None:
        self._cancelled = True
        if self._pending is not None:
            self._pending.cancel()

    async def close(self) -> None:
        await self.cancel()
        sock, self._socket, self._fast = self._socket, None, None
        if sock is not None:
            close_socket(sock)


class ZmqSubscriber(ZmqReceiver):
    """A worker's receiver behind ``ZmqFanout``: a SUB socket connected to the parent's XPUB.

    With ``server.workers`` above 1 only the parent binds the pushers' PULL endpoint; every
    worker subscribes to everything the parent forwards, so each push reaches every worker.
    """

    def __init__(
        self,
        settings: ZmqSettings,
        fanout: str,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        welcome_timeout: float = 5.0,
    ) -> None:
        super().__init__(settings, max_message_size)
        self.endpoint = fanout
        self.welcome_timeout = welcome_timeout

    async def open(self) -> None:
        """Connect and subscribe; return once the fan-out's welcome arrived.

        Raises:
            PushHandlerError: no fan-out answered within ``welcome_timeout`` (retried).
        """
        options = {zmq.LINGER: 0, zmq.MAXMSGSIZE: self.read_limit, zmq.RCVHWM: FANOUT_HWM}
        sock = open_socket(zmq.SUB, options)
        try:
            sock.connect(self.endpoint)
            sock.setsockopt(zmq.SUBSCRIBE, b"")
            async with asyncio.timeout(self.welcome_timeout):
                while _join(await sock.recv_multipart()) != FANOUT_WELCOME:
                    pass  # a push that raced the welcome: lost, as before the subscription
        except TimeoutError:
            close_socket(sock)
            raise PushHandlerError(
                f"no ZeroMQ fan-out answered at {self.endpoint} within {self.welcome_timeout} s"
            ) from None
        except BaseException:
            close_socket(sock)
            raise
        logger.info("ZMQ transport subscribed to the workers' fan-out %s", self.endpoint)
        self._socket, self._cancelled = sock, False
        self._fast = zmq.Socket.shadow(sock.underlying)

    async def receive(self) -> Sequence[Delivery]:
        while True:
            batch = await super().receive()
            kept = [delivery for delivery in batch if delivery.body != FANOUT_WELCOME]
            if kept or not batch:  # a lone welcome (the fan-out reconnected): wait again
                return kept

    def delivery(self, parts: list[bytes]) -> Delivery | None:
        """The frame's position from the fan-out's stamp; a frame without one (a fan-out of
        an older version) is a push of this worker's own log."""
        if len(parts) != 2 or not parts[0].startswith(FANOUT_STAMP):
            return Delivery(_join(parts))
        epoch, _, offset = parts[0].removeprefix(FANOUT_STAMP).decode().rpartition(":")
        return Delivery(parts[1], position=Position(epoch, int(offset)))


class ZmqFanout:
    """The one PULL socket of a multi-worker server (in the parent), forwarded to every worker.

    Pushers connect to ``pushers.zmq`` as always; the parent binds it and republishes each frame
    on an XPUB socket at ``publish`` (an ``ipc://`` path), to which each worker's
    ``ZmqSubscriber`` subscribes. Each frame goes with its position in the parent's log
    (``FANOUT_STAMP``), so that a push has one position (one SSE event id, one WAMP v2
    ``_position``) on every worker and a client recovers on any of them. A worker restarting
    misses what was sent meanwhile (at-most-once, as with one process).
    """

    def __init__(
        self, settings: ZmqSettings, publish: str, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    ):
        self.pull = ZmqReceiver(settings, max_message_size)
        self.publish = publish
        self.forwarded = 0
        """Frames taken from pushers and published to the workers."""
        self.log = LocalLog()
        """Numbers the forwarded pushes: one position per push, the same on every worker."""
        self._xpub: zmq.asyncio.Socket | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def is_open(self) -> bool:
        return self.pull.is_open and all(not task.done() for task in self._tasks)

    @property
    def oversize(self) -> int:
        """Frames over ``zmq_max_message_size`` dropped (and logged) before forwarding."""
        return self.pull.stats.oversize

    async def start(self) -> None:
        """Bind the workers' side, then the pushers' side.

        Raises:
            ListenError: the ``pushers.zmq`` address cannot be bound.
        """
        xpub = open_socket(zmq.XPUB, {zmq.LINGER: 0, zmq.SNDHWM: FANOUT_HWM, zmq.XPUB_VERBOSE: 1})
        xpub.setsockopt(zmq.XPUB_WELCOME_MSG, FANOUT_WELCOME)
        xpub.bind(self.publish)
        self._xpub = xpub
        try:
            await self.pull.open()
        except BaseException:
            await self.close()
            raise
        self._tasks = [
            asyncio.create_task(self._forward(xpub), name="zmq-fanout"),
            asyncio.create_task(self._drain_subscriptions(xpub), name="zmq-fanout-subs"),
        ]

    async def _forward(self, xpub: zmq.asyncio.Socket) -> None:
        while True:
            batch = await self.pull.receive()
            if not batch:
                return
            for delivery in batch:
                position = self.log.next()
                stamp = f"{position.epoch}:{position.offset}".encode()
                await xpub.send_multipart([FANOUT_STAMP + stamp, delivery.body])
            self.forwarded += len(batch)

    async def _drain_subscriptions(self, xpub: zmq.asyncio.Socket) -> None:
        """Read the workers' (un)subscribe messages, which XPUB queues for us, and drop them."""
        while True:
            await xpub.recv()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)
        self._tasks = []
        await self.pull.close()
        xpub, self._xpub = self._xpub, None
        if xpub is not None:
            close_socket(xpub)


def _join(parts: list[bytes]) -> bytes:
    return parts[0] if len(parts) == 1 else b"".join(parts)


class ZmqServerPushHandler(ServerPushHandler):
    """A ``ZmqReceiver`` bound to ``protocol://host:port``; each frame is one push.

    A frame that cannot be decoded, routed or handled fires ``push_fail`` and is dropped;
    the handler goes on with the next one (there is nobody to reject it to).
    """

    name = "zmq"

    def __init__(
        self,
        settings: ZmqSettings,
        router: Router,
        dispatcher: EventDispatcher,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        fanout: str | None = None,
    ) -> None:
        """``max_message_size``: bytes of one frame (``server.limits.zmq_max_message_size``);
        ``fanout``: in a worker of ``server.workers``, the parent's ``ZmqFanout`` endpoint to
        subscribe to instead of binding the PULL endpoint itself."""
        self.settings = settings
        self.endpoint = endpoint(settings)
        receiver: ZmqReceiver = (
            ZmqReceiver(settings, max_message_size)
            if fanout is None
            else ZmqSubscriber(settings, fanout, max_message_size)
        )
        super().__init__(router, dispatcher, receiver, dedup_window=0)
        receiver.stats = self.stats  # oversize frames count as this handler's
        self.markers = ZmqMarkers(self.endpoint)
        self.canary = self.markers.canary(settings, self.deafened)

    async def close(self) -> None:
        await super().close()
        self.markers.close()
