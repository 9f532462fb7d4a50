"""``server.workers``' ZeroMQ fan-out, both ends: ``ZmqFanout`` in the parent binds the pushers'
PULL endpoint and republishes every frame on an XPUB socket; ``ZmqSubscriber`` in each worker
receives them on a SUB socket. The two agree on the welcome and the position stamp below.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import zmq
import zmq.asyncio

from gos_web_socket.app.exceptions import PushHandlerError
from gos_web_socket.app.position import LocalLog, Position
from gos_web_socket.app.transports.contract import Delivery
from gos_web_socket.app.transports.zmq.context import close_socket, open_socket
from gos_web_socket.app.transports.zmq.receiver import ZmqReceiver
from gos_web_socket.app.transports.zmq.wire import DEFAULT_MAX_MESSAGE_SIZE, join

if TYPE_CHECKING:
    from gos_web_socket.settings.models import ZmqSettings

__all__ = ["FANOUT_HWM", "FANOUT_STAMP", "FANOUT_WELCOME", "ZmqFanout", "ZmqSubscriber"]

logger = logging.getLogger(__package__)  # the transport's one logger name

FANOUT_WELCOME = b"\x00gos-fanout"
"""What the fan-out's XPUB sends each worker that subscribes (never a JSON envelope): a worker
consumes only once it got it, so its /health turns ready when pushes really reach it."""
FANOUT_STAMP = b"\x00gos-position:"
"""The first part of each frame the fan-out forwards: ``<epoch>:<offset>`` in the parent's log,
so every worker records a push under the same position (one event id, one recovery cursor)."""
FANOUT_HWM = 100_000
"""Frames the fan-out queues per worker before dropping (at-most-once, like ZeroMQ itself)."""


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
                while join(await sock.recv_multipart()) != FANOUT_WELCOME:
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
            return Delivery(join(parts))
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
