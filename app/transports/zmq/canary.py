"""The ZeroMQ canary's sender: markers go to the pushers' PULL endpoint, as pushes do.

In one process that is the handler's own PULL socket; in a worker of ``server.workers`` it is
the parent's, whose fan-out republishes every frame to every worker (each keeps its own
markers). A worker whose SUB socket stopped getting the fan-out's frames is so found deaf.
See app/transports/canary.py and docs/canary.md.
"""

from __future__ import annotations

import uuid

import zmq
import zmq.asyncio

from gos_web_socket.app.transports.canary import Canary
from gos_web_socket.app.transports.zmq.context import close_socket, open_socket
from gos_web_socket.settings.models import ZmqSettings

__all__ = ["ZmqMarkers"]


class ZmqMarkers:
    """A PUSH socket to ``endpoint``, opened by the first marker and kept until ``close()``."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self._socket: zmq.asyncio.Socket | None = None

    async def send(self, body: bytes) -> None:
        if self._socket is None:
            self._socket = open_socket(zmq.PUSH, {zmq.LINGER: 0})
            self._socket.connect(self.endpoint)
        await self._socket.send(body)  # the canary bounds the wait by its timeout

    def close(self) -> None:
        sock, self._socket = self._socket, None
        if sock is not None:
            close_socket(sock)

    def canary(self, settings: ZmqSettings, on_deaf: Canary.OnDeaf) -> Canary | None:
        """The canary ``settings.canary`` asks for (None: off), sending through this."""
        if not settings.canary.interval:
            return None
        node_id = f"zmq.{uuid.uuid4().hex[:12]}"
        return Canary(
            node_id, self.send, settings.canary.interval, settings.canary.timeout, on_deaf
        )
