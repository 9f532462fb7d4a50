"""The broker log behind channel histories in stream mode, read through its push handler.

``HistoryStore`` asks where the log's reader started (``origin``) and, through ``Backfill``,
reads it back (``read_back``); both find the consuming push handler whose receiver is a
``LogReceiver`` when asked, since handlers start (and restart) after the history is built.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from gos_web_socket.app.exceptions import InvalidPayload, MessageDecodeError, RoutingError
from gos_web_socket.app.history import ReadBack
from gos_web_socket.app.message import Message
from gos_web_socket.app.position import Position
from gos_web_socket.app.push import Capture, Push
from gos_web_socket.app.transports.contract import LogReceiver

if TYPE_CHECKING:
    from gos_web_socket.app.transports.contract import PushableServer
    from gos_web_socket.app.transports.handler import ServerPushHandler

logger = logging.getLogger(__name__)


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
        """Run the log's pushes at ``first``..``last`` to ``channels`` again, through the push
        handler reading it, for recoveries older than those channels' history (``Backfill``):
        what their topics broadcast is captured; nothing is sent, recorded, counted or fired."""
        found = self.reader()
        if found is None:
            return ReadBack(None, {}, None, None)
        handler, receiver = found
        app = self._server()
        capture = Capture(channels)
        epoch, start, end = None, None, None
        for delivery in await receiver.read_back(first, last):
            position = delivery.position
            if position is None or (end is not None and position.offset != end + 1):
                break  # a hole: what follows it does not count as read
            epoch, end = position.epoch, position.offset
            start = position.offset if start is None else start
            try:
                request, data = handler.route(Message.decode(delivery.body))
            except (MessageDecodeError, RoutingError, InvalidPayload):  # dead-lettered when it came
                continue
            if request.matched not in channels:
                continue
            try:
                await app.on_push(Push.read_back(request, data, handler.name, position, capture))
            except Exception as exc:  # it failed the first time too; it was settled then
                logger.debug("push handler %s: read-back push failed: %r", handler.name, exc)
        return ReadBack(epoch, capture.publications, start, end)
