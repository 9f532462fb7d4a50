"""Reads of a RabbitMQ stream beside a node's own reader: where it starts, where it ends, and a
range read back for channel history. Each one runs on a channel of its own, closed afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Sequence

from aio_pika.abc import AbstractConnection, AbstractIncomingMessage, AbstractQueue

from gos_web_socket.app.exceptions import PushHandlerError
from gos_web_socket.app.position import Position
from gos_web_socket.app.transports.contract import Delivery
from gos_web_socket.settings.models import AmqpSettings

__all__ = ["STREAM_OFFSET", "StreamSideReads", "message_identity", "stream_offset"]

STREAM_OFFSET = "x-stream-offset"


def message_identity(offset: int, message: AbstractIncomingMessage) -> str:
    """A short name for the message at ``offset``: its id (or body) and timestamp, hashed."""
    mark = message.message_id or hashlib.sha1(message.body).hexdigest()
    stamp = message.timestamp.timestamp() if message.timestamp else ""
    return hashlib.sha1(f"{offset}:{mark}:{stamp}".encode()).hexdigest()[:16]


def stream_offset(message: AbstractIncomingMessage) -> int:
    offset = (message.headers or {}).get(STREAM_OFFSET)
    if type(offset) is not int:
        raise PushHandlerError(f"stream delivery without an integer {STREAM_OFFSET} header")
    return offset


class StreamSideReads:
    """The stream ``queue_name`` read on short-lived channels of a node's connection."""

    def __init__(self, settings: AmqpSettings, queue_name: str) -> None:
        self.settings = settings
        self.queue_name = queue_name

    @contextlib.asynccontextmanager
    async def reading(
        self, connection: AbstractConnection, prefetch: int
    ) -> AsyncIterator[AbstractQueue]:
        """The stream on a channel of its own (closed afterwards), beside the node's reader."""
        channel = await connection.channel(publisher_confirms=False)
        try:
            await channel.set_qos(prefetch_count=prefetch)
            yield await channel.get_queue(self.queue_name, ensure=False)
        finally:
            await channel.close()

    async def probe(
        self, connection: AbstractConnection, offset: int | str
    ) -> tuple[int, str] | None:
        """The offset and identity of the first message at ``offset`` or later, if one comes
        within ``stream.probe_timeout``."""
        async with self.reading(connection, 1) as queue:
            first: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()

            async def take(message: AbstractIncomingMessage) -> None:
                if not first.done():
                    at = stream_offset(message)
                    first.set_result((at, message_identity(at, message)))

            await queue.consume(take, arguments={STREAM_OFFSET: offset})
            try:
                return await asyncio.wait_for(first, self.settings.stream.probe_timeout)
            except TimeoutError:
                return None

    async def tail(self, connection: AbstractConnection) -> int | None:
        """The stream's last offset: the most a reader from ``last`` (its last chunk) gets
        before a quiet 0.2 s (None: the stream is empty)."""
        async with self.reading(connection, self.settings.prefetch_count) as queue:
            offsets: asyncio.Queue[int] = asyncio.Queue()

            async def take(message: AbstractIncomingMessage) -> None:
                offsets.put_nowait(stream_offset(message))
                await message.ack()

            await queue.consume(take, arguments={STREAM_OFFSET: "last"})
            last: int | None = None
            wait = self.settings.stream.probe_timeout
            while True:
                try:
                    offset = await asyncio.wait_for(offsets.get(), wait)
                except TimeoutError:
                    return last
                last = offset if last is None else max(last, offset)
                wait = 0.2

    async def read_back(
        self, connection: AbstractConnection, epoch: str, first: int, last: int
    ) -> Sequence[Delivery]:
        """The stream's messages at ``first``..``last``: a read ends at ``last`` or after
        ``stream.read_timeout`` without a message.

        Not ``probe_timeout``: these offsets are known to be in the stream, so a slow first
        message (a busy broker seeking to ``first``) is waited for; ending early would report a
        recovery incomplete that the stream could have served.
        """
        async with self.reading(connection, self.settings.prefetch_count) as queue:
            read: list[Delivery] = []
            high = [first - 1]  # the last offset kept (a consumer starts at a chunk's start)
            arrived: asyncio.Queue[int] = asyncio.Queue()

            async def take(message: AbstractIncomingMessage) -> None:
                # Kept before the first await: each delivery's callback is a task of its own,
                # and they start in the stream's order but may resume in any other.
                offset = stream_offset(message)
                if high[0] < offset <= last:
                    high[0] = offset
                    read.append(Delivery(message.body, message.message_id, Position(epoch, offset)))
                arrived.put_nowait(offset)
                await message.ack()

            await queue.consume(take, arguments={STREAM_OFFSET: first})
            quiet = self.settings.stream.read_timeout
            while True:
                try:
                    offset = await asyncio.wait_for(arrived.get(), quiet)
                except TimeoutError:
                    return read
                if offset >= last:
                    return read
