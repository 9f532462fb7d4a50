"""A stream read back for a recovery waits for a broker that is slow to start sending."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from gos_web_socket.app.transports.amqp.sidereads import STREAM_OFFSET, StreamSideReads
from gos_web_socket.settings.models import AmqpSettings, StreamSettings


class Delivered:
    """What the read uses of a stream delivery: its offset header, body and ack."""

    def __init__(self, offset: int) -> None:
        self.headers = {STREAM_OFFSET: offset}
        self.body = f'{{"n": {offset}}}'.encode()
        self.message_id = None

    async def ack(self) -> None:
        return None


class SeekingStream:
    """A stream queue whose broker answers ``consume`` at once and sends the messages from
    the asked offset ``seek`` seconds later (a busy broker finding the chunk). No broker can be
    made to do that on demand, so the test stands in for this one call."""

    def __init__(self, last: int, seek: float) -> None:
        self.last, self.seek = last, seek
        self.sending: asyncio.Task[None] | None = None

    async def consume(
        self, callback: Callable[[Any], Awaitable[None]], arguments: dict[str, Any]
    ) -> str:
        async def send() -> None:
            await asyncio.sleep(self.seek)
            for offset in range(arguments[STREAM_OFFSET], self.last + 1):
                await callback(Delivered(offset))

        self.sending = asyncio.get_running_loop().create_task(send())
        return "ctag"


class Reads(StreamSideReads):
    """The side reads on ``SeekingStream`` instead of a channel of a connection."""

    def __init__(self, settings: AmqpSettings, stream: SeekingStream) -> None:
        super().__init__(settings, "s")
        self.stream = stream

    @contextlib.asynccontextmanager
    async def reading(self, connection: Any, prefetch: int) -> AsyncIterator[Any]:
        yield self.stream


async def test_a_read_back_waits_past_probe_timeout_for_the_first_message() -> None:
    """Messages that start 0.3 s after the consume, with ``probe_timeout`` 0.05 s: the read
    still returns every offset asked for (it used to return none, and the recovery it
    served was reported incomplete though the stream held everything)."""
    stream = SeekingStream(last=40, seek=0.3)
    settings = AmqpSettings(stream=StreamSettings(probe_timeout=0.05))
    read = await Reads(settings, stream).read_back(None, "e", 5, 34)  # type: ignore[arg-type]
    assert [d.position.offset for d in read if d.position] == list(range(5, 35))
    assert stream.sending is not None
    stream.sending.cancel()


async def test_a_read_back_of_a_silent_stream_ends_after_read_timeout() -> None:
    """A stream that never sends ends the read after ``read_timeout``, empty: bounded."""
    stream = SeekingStream(last=40, seek=3600)
    settings = AmqpSettings(stream=StreamSettings(probe_timeout=0.05, read_timeout=0.2))
    loop = asyncio.get_running_loop()
    started = loop.time()
    read = await Reads(settings, stream).read_back(None, "e", 5, 34)  # type: ignore[arg-type]
    assert read == [] and 0.2 <= loop.time() - started < 5
    assert stream.sending is not None
    stream.sending.cancel()
