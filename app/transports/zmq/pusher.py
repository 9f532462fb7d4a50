"""The ZeroMQ pusher: a PUSH socket connected to the server push handler's PULL endpoint.

Two choices keep a push from ever blocking a web request for long:

- ``ZMQ_IMMEDIATE``: a message is queued only on a completed connection, so with no handler
  listening ``push()`` waits for one up to ``send_timeout`` and then raises ``PushFailed``
  (instead of piling up in a queue nobody will read).
- ``linger``: GOS's default ``-1`` ("flush queued messages on close, however long it takes")
  is bounded here by ``send_timeout``; a value of 0 or more is used as is (milliseconds).
  Closing a socket never blocks; the toolkit's context is terminated at interpreter exit so
  that messages still queued on closed sockets get their (bounded) linger to reach the handler.

A frame over ``server.limits.zmq_max_message_size`` is refused here with ``PushFailed``, since
the server would drop it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import zmq
import zmq.asyncio

from gos_web_socket.app.exceptions import PushFailed
from gos_web_socket.app.message import Message
from gos_web_socket.app.transports.pusher import Pusher
from gos_web_socket.app.transports.zmq.context import close_socket, open_socket, shared_context
from gos_web_socket.app.transports.zmq.wire import DEFAULT_MAX_MESSAGE_SIZE, LIMIT_SETTING, endpoint

if TYPE_CHECKING:
    from gos_web_socket.app.events import EventDispatcher
    from gos_web_socket.app.router import Router
    from gos_web_socket.settings.models import ZmqSettings

__all__ = ["ZmqPusher"]


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
