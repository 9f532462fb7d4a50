"""The broker log behind channel histories in stream mode, read through its push handler.

``HistoryStore`` asks where the log's reader started (``origin``) and, through ``Backfill``,
reads it back (``read_back``); both find the consuming push handler whose receiver is a
``LogReceiver`` when asked, since handlers start (and restart) after the history is built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from gos_web_socket.app.history import ReadBack
from gos_web_socket.app.position import Position
from gos_web_socket.app.transports.contract import LogReceiver

if TYPE_CHECKING:
    from gos_web_socket.app.transports.contract import PushableServer
    from gos_web_socket.app.transports.handler import ServerPushHandler


class LogReader:
    """Finds the push handler that reads a broker log among ``push_handlers``; ``server`` (a
    provider: the server is built after its history) is where read-back pushes run."""

    def __init__(
        self,
        push_handlers: Mapping[str, ServerPushHandler],
        server: Callable[[], PushableServer],
    ) -> None:
        self.push_handlers = push_handlers
        self._server = server

    def reader(self) -> tuple[ServerPushHandler, LogReceiver] | None:
        """The first consuming push handler that reads a broker log (stream mode)."""
        for handler in self.push_handlers.values():
            receiver = handler.receiver
            if isinstance(receiver, LogReceiver) and handler.is_consuming:
                return handler, receiver
        return None

    def origin(self) -> Position | None:
        """Where the push handler reading a broker log started (``LogReceiver.opened_at``)."""
        found = self.reader()
        return None if found is None else found[1].opened_at

    async def read_back(self, first: int, last: int, channels: frozenset[str]) -> ReadBack:
        """Read the broker log back for recoveries (``Backfill``), through its push handler."""
        found = self.reader()
        if found is None:
            return ReadBack(None, {}, None, None)
        return await found[0].read_back(self._server(), first, last, channels)
