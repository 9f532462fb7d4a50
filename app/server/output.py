"""One connection's output path: frames batched per loop turn, back-pressure, slow readers cut off.

Frames queued during one event-loop turn leave together in one ``transport.write``: under load
a broadcast costs one ``send()`` per client per turn, not per push, and the syscall is what
dominates a broadcast. A client whose unsent bytes stay over ``max_outgoing_buffer`` for
``slow_reader_timeout`` seconds, or pass ``BACKLOG_FACTOR`` times it, is cut off (aborted)
rather than have its frames held in server memory; it reconnects and recovers (docs/streams.md).

The connection hands ``write`` to the topics as its ``write_frame`` (a bound method: no call
in between on the fan-out's hot path); a topic calls it once per subscriber per turn with the
turn's joined frames (topic.py), and ``write`` first has the flusher hand over the frames a
topic still holds for this client (``Flusher.before_write``), so its frames keep their order.
The rest is called from the connection's asyncio hooks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any, Protocol

from gos_web_socket.app.server.memory import OutgoingBudget
from gos_web_socket.app.stats import ServerStats

logger = logging.getLogger(__name__)

BACKLOG_FACTOR = 16
"""Unsent bytes beyond this many times ``max_outgoing_buffer`` cut a client off at once."""


class Link(Protocol):
    """What the output path sees of its connection."""

    @property
    def session_id(self) -> str: ...

    @property
    def state(self) -> int: ...

    @property
    def transport(self) -> Any:
        """The asyncio write transport; None once the connection is gone."""

    def abort(self, reason: str) -> None:
        """Drop the TCP connection at once, ``reason`` being why it was not clean."""


class Flusher(Protocol):
    """What the output path needs of the end of the loop turn (``FlushScheduler``)."""

    def schedule(self, connection: Any, /) -> None:
        """Have ``connection.flush()`` run once at the end of this loop turn."""

    @property
    def batching(self) -> object | None:
        """The topic holding frames of this turn (None: none; ``before_write`` has nothing
        to do, checked first on the hot path)."""
        ...

    def before_write(self, session_id: str) -> None:
        """A topic's frames of this turn queued for the client go before the next frame."""

    async def flushed(self) -> None:
        """Return once every frame queued so far was handed to its client's transport."""


GONE = -1
"""No autobahn state: a lost connection's ``Output`` compares the state with it and writes
nothing."""


class Unlinked:
    """The link of a released ``Output``: never open, no transport, nothing to abort."""

    session_id = ""
    state = GONE - 1
    transport = None

    def abort(self, reason: str) -> None:
        """Nothing left to drop."""


UNLINKED = Unlinked()


class OutputServices(Protocol):
    """What the output path needs of its server (``ConnectionServices`` has it)."""

    @property
    def stats(self) -> ServerStats: ...

    @property
    def flusher(self) -> Flusher:
        """The end of the loop turn (``FlushScheduler``, live.py)."""
        ...

    @property
    def max_outgoing_buffer(self) -> int: ...

    @property
    def slow_reader_timeout(self) -> float: ...

    @property
    def outgoing(self) -> OutgoingBudget:
        """The server-wide budget of queued bytes (``max_outgoing_total``, memory.py)."""
        ...


class Output:
    """The frames of one connection waiting for the end of the loop turn, and its backlog."""

    __slots__ = (
        "_backlog_timer",
        "_drained",
        "_flusher",
        "_link",
        "_open",
        "_pending",
        "_read_mark",
        "_services",
        "_stats",
        "_unsent",
        "_written",
    )

    def __init__(self, link: Link, services: OutputServices, open_state: int) -> None:
        self._link = link
        self._services = services
        self._stats = services.stats
        """Counted on every write: looked up once (a lone push writes each client)."""
        self._flusher = services.flusher
        self._open = open_state
        """The link's ``state`` while frames may be written (autobahn's ``STATE_OPEN``)."""
        self._pending: bytes | list[bytes] | None = None
        """Frames queued this loop turn: one frame as it is, several as a list."""
        self._backlog_timer: asyncio.TimerHandle | None = None
        """Running while the client's unsent bytes are over ``max_outgoing_buffer``."""
        self._drained: asyncio.Future[None] | None = None
        """Awaited by ``drained`` while the backlog lasts."""
        self._unsent = 0
        """The transport's unsent bytes after the last flush, as the server's budget knows."""
        self._written = 0
        """Bytes handed to the transport; less its unsent bytes, what the client read."""
        self._read_mark = 0
        """What the client had read when its backlog's deadline was set."""

    def write(self, frame: bytes) -> bool:
        """Queue ready frame bytes if the connection is open; False when it is not."""
        link = self._link
        if link.state != self._open or link.transport is None:
            return False
        flusher = self._flusher
        if flusher.batching is not None:  # None while a topic hands its frames over
            flusher.before_write(link.session_id)
        pending = self._pending
        if pending is None:
            # The frame itself, not a list: a broadcast then allocates no object the garbage
            # collector tracks per subscriber (1,000 lists a push triggered a collection each).
            self._pending = frame
            flusher.schedule(link)
        elif isinstance(pending, bytes):
            self._pending = [pending, frame]
        else:
            pending.append(frame)
        return True

    def flush(self) -> None:
        """Write the queued frames, in order, in one write (after the frames a topic holds
        for this client: a close frame follows everything queued before it)."""
        link = self._link
        if self._flusher.batching is not None:
            self._flusher.before_write(link.session_id)
        pending, self._pending = self._pending, None
        transport = link.transport
        if pending is None or link.state != self._open or transport is None:
            return
        if isinstance(pending, bytes):
            self._send(transport, pending, 1)
        else:
            self._send(transport, b"".join(pending), len(pending))

    def write_now(self, frame: bytes) -> bool:
        """Write the queued frames and ``frame`` after them now, in one write; False when the
        connection is not open. The end of a turn: a topic hands over its frames, so the
        connection's own flush, later in the same turn, finds nothing left."""
        link = self._link
        transport = link.transport
        if link.state != self._open or transport is None:
            return False
        pending = self._pending
        if pending is None:
            self._send(transport, frame, 1)
        else:
            self._pending = None
            if isinstance(pending, bytes):
                self._send(transport, pending + frame, 2)
            else:
                pending.append(frame)
                self._send(transport, b"".join(pending), len(pending))
        return True

    def _send(self, transport: Any, data: bytes, frames: int) -> None:
        self._stats.frames_out += frames
        self._written += len(data)
        transport.write(data)
        unsent = transport.get_write_buffer_size()
        if unsent != self._unsent:  # 0 and 0 for a client that reads: nothing to count
            self._unsent = unsent
            self._services.outgoing.change(self, unsent)
        if self._backlog_timer is not None:  # paused: a backlog that keeps growing
            self._check_backlog()

    def unsent(self) -> int:
        """The transport's unsent bytes now (0: gone); the server's budget recounts with it."""
        transport = self._link.transport
        self._unsent = 0 if transport is None else transport.get_write_buffer_size()
        return self._unsent

    def gone(self) -> None:
        """The connection is lost: nothing is written to it any more (its teardown may wait
        for a later loop turn, autobahn's state still open); forget its deadline and its bytes
        in the server's budget."""
        self._open = GONE
        self.stop()
        if self._unsent:
            self._unsent = 0
            self._services.outgoing.change(self, 0)

    def release(self) -> None:
        """The connection's departure is done: let go of it (it points here, this pointed
        back: a reference cycle only a full garbage collection would free)."""
        self.gone()
        self._link = UNLINKED

    def pause(self) -> None:
        """The client's unsent bytes passed ``max_outgoing_buffer`` (asyncio's
        ``pause_writing``). One big push or a burst does that to a client that reads at full
        speed, so it gets ``slow_reader_timeout`` to drain below it (``resume``) or at least
        to read ``max_outgoing_buffer`` bytes (then it gets as long again); a client that
        reads less, or holds ``BACKLOG_FACTOR`` times the limit (memory), is cut off."""
        if self._backlog_timer is None:
            self._read_mark = self._read()
            self._set_deadline()
        self._check_backlog()

    def _read(self) -> int:
        transport = self._link.transport
        return self._written - (0 if transport is None else transport.get_write_buffer_size())

    def _set_deadline(self) -> None:
        loop = asyncio.get_running_loop()
        timeout = self._services.slow_reader_timeout
        self._backlog_timer = loop.call_later(timeout, self._deadline)

    def _deadline(self) -> None:
        """``slow_reader_timeout`` over the limit: cut off, unless the client read enough."""
        read = self._read()
        if read - self._read_mark < self._services.max_outgoing_buffer:
            self.cut_off("did not drain")
            return
        self._read_mark = read  # it reads, behind a burst: the budgets bound its memory
        self._set_deadline()

    def resume(self) -> None:
        """The backlog drained (below a quarter of the limit): the client reads."""
        self.stop()

    def stop(self) -> None:
        """Forget the backlog's deadline (drained, cut off, or the connection is gone)."""
        if self._backlog_timer is not None:
            self._backlog_timer.cancel()
            self._backlog_timer = None
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    async def drained(self) -> None:
        """Return once what was queued is written, the client's unsent bytes are back under
        ``max_outgoing_buffer`` (or it is cut off or gone) and the server-wide budget has
        room (``max_outgoing_total``)."""
        await self._flusher.flushed()
        if self._backlog_timer is not None:
            if self._drained is None:
                self._drained = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._drained)
        await self._services.outgoing.room()

    def _check_backlog(self) -> None:
        transport = self._link.transport
        limit = self._services.max_outgoing_buffer * BACKLOG_FACTOR
        if transport is not None and transport.get_write_buffer_size() > limit:
            self.cut_off(f"over {BACKLOG_FACTOR} x max_outgoing_buffer")

    def cut_off(self, why: str) -> None:
        """Abort a client that does not read, rather than hold its frames in server memory."""
        self.stop()
        link = self._link
        transport = link.transport
        if transport is not None and link.state == self._open:
            self._services.stats.cut_off += 1
            unread, limit = transport.get_write_buffer_size(), self._services.max_outgoing_buffer
            message = "connection %s cut off: %d bytes unread (%s), max_outgoing_buffer is %d"
            extra = {"conn_id": link.session_id}
            logger.warning(message, link.session_id, unread, why, limit, extra=extra)
            link.abort("client did not read (outgoing buffer over limit)")


async def write_paced(output: Output, frames: Iterable[bytes], chunk: int) -> bool:
    """Queue ``frames`` about ``chunk`` bytes at a time, waiting for the client to read each
    (``Output.drained``): a long replay is not held in memory at once, and does not cut off
    the client it is meant for. False when the connection closed on the way."""
    queued = 0
    for frame in frames:
        if not output.write(frame):
            return False
        queued += len(frame)
        if queued >= chunk:
            queued = 0
            await output.drained()
    return True
