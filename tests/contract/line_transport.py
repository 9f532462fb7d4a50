"""A transport written from the docstrings of ``app.transports.contract`` alone: JSON lines
over TCP.

It is the worked example of docs/transports.md ("Write your own transport"), and the contract
suite runs it next to the shipped transports. One line is one envelope; delivery is
at-most-once (no acknowledgement), like ZeroMQ.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from gos_web_socket.app.exceptions import InvalidPushArgument, PushFailed, PushHandlerError
from gos_web_socket.app.message import Message
from gos_web_socket.app.router import Router
from gos_web_socket.app.transports.contract import Delivery, Receiver
from gos_web_socket.app.transports.pusher import Pusher


class LinePusher(Pusher):
    """Writes each envelope as one line on a kept TCP connection."""

    name = "lines"

    def __init__(self, router: Router, host: str, port: int) -> None:
        super().__init__(router)
        self.host, self.port = host, port
        self._writer: asyncio.StreamWriter | None = None

    async def send(self, envelope: Message, context: dict[str, Any]) -> None:
        if context:
            raise InvalidPushArgument(
                f"unknown context option(s) {', '.join(sorted(context))}; allowed: none"
            )
        line = envelope.encode() + b"\n"
        for attempt in (1, 2):  # a kept connection may have died since: one fresh try
            try:
                if self._writer is None or self._writer.is_closing():
                    _, self._writer = await asyncio.open_connection(self.host, self.port)
                self._writer.write(line)
                await self._writer.drain()
                return
            except OSError as exc:
                await self.disconnect()
                if attempt == 2:
                    raise PushFailed(
                        f"no line receiver at {self.host}:{self.port}: {exc}", transport=self.name
                    ) from exc

    async def disconnect(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    def forget_connection(self) -> None:
        self._writer = None  # its loop is closed, and the transport with it


class LineReceiver(Receiver):
    """Listens on TCP; every line any client writes is one delivery (ack/reject: no-ops)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._server: asyncio.Server | None = None
        self._inbox: asyncio.Queue[Delivery | None] | None = None
        self._clients: set[asyncio.StreamWriter] = set()

    @property
    def is_open(self) -> bool:
        return self._server is not None and self._server.is_serving()

    async def open(self) -> None:
        self._inbox = asyncio.Queue()
        try:
            self._server = await asyncio.start_server(self._serve, self.host, self.port)
        except OSError as exc:
            raise PushHandlerError(f"cannot listen on {self.host}:{self.port}: {exc}") from exc

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients.add(writer)
        try:
            while (line := await reader.readline()) and self._inbox is not None:
                self._inbox.put_nowait(Delivery(line.rstrip(b"\r\n")))
        except OSError:
            pass  # the client went away: what it wrote so far was taken
        finally:
            self._clients.discard(writer)
            writer.close()

    async def receive(self) -> Sequence[Delivery]:
        inbox = self._inbox
        if inbox is None or (first := await inbox.get()) is None:
            return []
        batch = [first]
        while not inbox.empty() and (more := inbox.get_nowait()) is not None:
            batch.append(more)
        return batch

    async def cancel(self) -> None:
        if self._inbox is not None:
            self._inbox.put_nowait(None)

    async def close(self) -> None:
        await self.cancel()
        self._inbox = None
        server, self._server = self._server, None
        if server is not None:
            server.close()
            for writer in list(self._clients):
                writer.close()
            await server.wait_closed()
