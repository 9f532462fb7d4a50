"""The ZeroMQ server push handler's receiver: a PULL socket bound to the pushers' endpoint.

No push is lost to a size limit in silence (docs/security.md): the receiver reads frames from a
foreign peer up to ``OVERSIZE_READ`` times ``server.limits.zmq_max_message_size`` and counts,
logs and drops those over the limit (libzmq itself cuts a peer off, unread, only beyond that, a
guard for memory).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

import zmq
import zmq.asyncio

from gos_web_socket.app.exceptions import ListenError, PushHandlerError
from gos_web_socket.app.logs import RateLimitedLog
from gos_web_socket.app.stats import PushHandlerStats
from gos_web_socket.app.transports.contract import Delivery, Receiver
from gos_web_socket.app.transports.zmq.context import close_socket, open_socket
from gos_web_socket.app.transports.zmq.wire import (
    DEFAULT_MAX_MESSAGE_SIZE,
    LIMIT_SETTING,
    endpoint,
    join,
)

if TYPE_CHECKING:
    from gos_web_socket.settings.models import ZmqSettings

__all__ = ["OVERSIZE_READ", "ZmqReceiver"]

logger = logging.getLogger(__package__)  # the transport's one logger name

BIND_RETRY = 0.5  # seconds start() retries a port that a closed handler may still hold
OVERSIZE_READ = 8
"""A receiver reads frames up to this many times its limit, to count and log those over it;
libzmq (``ZMQ_MAXMSGSIZE``) cuts a peer sending a bigger one off unread, so a foreign peer
cannot make the server hold more than that per connection."""


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
        return Delivery(join(parts))

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
