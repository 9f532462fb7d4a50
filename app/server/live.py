"""What a running server keeps track of: its open connections, the tasks it spawned, and the
end-of-turn flush of the connections that queued frames."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from gos_web_socket.app.server.memory import OutgoingBudget

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
    """Flushes each connection that queued frames once, at the end of the loop turn."""

    def __init__(self, outgoing: OutgoingBudget | None = None) -> None:
        self._outgoing = OutgoingBudget.unlimited() if outgoing is None else outgoing
        """Checked once a turn, after the flush (``max_outgoing_total``)."""
        self._unflushed: list[WampConnection] = []
        self._flush_done: asyncio.Future[None] | None = None

    def schedule(self, connection: WampConnection) -> None:
        """Have ``connection.flush()`` run at the end of this loop turn (once per turn)."""
        if not self._unflushed:
            asyncio.get_running_loop().call_soon(self.flush)
        self._unflushed.append(connection)

    def flush(self) -> None:
        """Flush the connections scheduled so far, and wake those waiting in ``flushed``."""
        connections, self._unflushed = self._unflushed, []
        done, self._flush_done = self._flush_done, None
        for connection in connections:
            connection.flush()
        self._outgoing.settle()
        if done is not None and not done.done():
            done.set_result(None)

    async def flushed(self) -> None:
        """Return once every frame queued so far was handed to its client's transport."""
        if not self._unflushed:
            return
        if self._flush_done is None:
            self._flush_done = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._flush_done)
