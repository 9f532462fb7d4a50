"""What a running server keeps track of: its open connections, the tasks it spawned, and the
end-of-turn flush of the connections that queued frames."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from gos_web_socket.app.server.fanout import Batched
from gos_web_socket.app.server.memory import OutgoingBudget
from gos_web_socket.app.stats import ServerStats

if TYPE_CHECKING:
    from gos_web_socket.app.server.connection import WampConnection

logger = logging.getLogger(__name__)

T = TypeVar("T")


class LiveConnections:
    """The clients with an open WebSocket, and a way to close them all within a timeout."""

    def __init__(self) -> None:
        self._connections: set[WampConnection] = set()
        self._all_closed = asyncio.Event()
        self._all_closed.set()

    def __len__(self) -> int:
        return len(self._connections)

    def snapshot(self) -> frozenset[WampConnection]:
        return frozenset(self._connections)

    def register(self, connection: WampConnection) -> None:
        self._connections.add(connection)
        self._all_closed.clear()

    def unregister(self, connection: WampConnection) -> None:
        self._connections.discard(connection)
        if not self._connections:
            self._all_closed.set()

    async def close_all(self, code: int, reason: str, grace: float) -> None:
        """Close every connection with ``code``; drop those not closed within ``grace`` s."""
        for connection in list(self._connections):
            connection.close(code, reason)
        try:
            await asyncio.wait_for(self._all_closed.wait(), grace)
        except TimeoutError:
            logger.warning("%d client(s) did not close in time; dropping", len(self))
            for connection in list(self._connections):
                connection.dropConnection(abort=True)


class Tasks:
    """Tasks the server keeps until they finish, and cancels when it stops."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run ``coro`` as a task kept until it finishes."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def finish(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for the pending tasks, then cancel what is left."""
        pending = [task for task in self._tasks if not task.done()]
        if pending:
            await asyncio.wait(pending, timeout=grace)
            for task in pending:
                task.cancel()


class FlushScheduler:
    """The end of each loop turn: what topics and connections queued is written.

    A topic that broadcasts keeps the turn's frames itself (``batch``) and hands each
    subscriber their join once, here, so that a burst costs one call per subscriber per turn
    rather than per push. At most one topic batches at a time: another topic's broadcast, a
    frame written to one of its subscribers (``before_write``) or a change of its members
    writes its batch first (``seal``), so every client receives its frames in the order
    they were queued. Connections are flushed after the topic, each in one write.
    """

    def __init__(self, outgoing: OutgoingBudget | None = None, stats: ServerStats | None = None):
        self.outgoing = OutgoingBudget.unlimited() if outgoing is None else outgoing
        """Checked once a turn, after the flush (``max_outgoing_total``)."""
        self.stats = ServerStats() if stats is None else stats
        self._unflushed: list[WampConnection] = []
        self._flush_done: asyncio.Future[None] | None = None
        self._due = False
        """``flush`` is scheduled for the end of this turn."""
        self.batching: Batched | None = None
        """The topic whose frames of this turn are not handed to its subscribers yet."""

    def _flush_soon(self) -> None:
        if not self._due:
            self._due = True
            asyncio.get_running_loop().call_soon(self.flush)

    def schedule(self, connection: WampConnection) -> None:
        """Have ``connection.flush()`` run at the end of this loop turn (once per turn)."""
        self._flush_soon()
        self._unflushed.append(connection)

    def batch(self, topic: Batched) -> None:
        """``topic`` keeps frames of this turn: any other topic's are handed over first."""
        if self.batching is not topic:
            self.seal()
            self.batching = topic
            self._flush_soon()

    def queued(self, frame_bytes: int) -> None:
        """A topic keeps a broadcast of ``frame_bytes`` per subscriber for the turn's end."""
        self.outgoing.queued(frame_bytes)

    def before_write(self, session_id: str) -> None:
        """A frame is about to be queued for a client: the batching topic's frames go
        first if the client is one of its subscribers."""
        batching = self.batching
        if batching is not None and batching.includes(session_id):
            self.seal()

    def seal(self, now: bool = False) -> None:
        """Hand the batching topic's frames to its subscribers: queued after what they hold
        (the turn goes on), or written ``now`` with it (the turn's end)."""
        topic, self.batching = self.batching, None
        if topic is not None:
            extra = topic.write_turn(now)  # it counts too: add after, not around the call
            self.stats.frames_out += extra

    def flush(self) -> None:
        """Write what was queued so far, and wake those waiting in ``flushed``."""
        self.seal(now=True)
        self._due = False
        connections, self._unflushed = self._unflushed, []
        done, self._flush_done = self._flush_done, None
        for connection in connections:
            connection.flush()
        self.outgoing.settle()
        if done is not None and not done.done():
            done.set_result(None)

    async def flushed(self) -> None:
        """Return once every frame queued so far was handed to its client's transport."""
        if not self._unflushed and self.batching is None:
            return
        if self._flush_done is None:
            self._flush_done = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._flush_done)
