"""The channel history as the broker's verbs reach it: recoveries, ``gos/history``, the log.

``HistoryVerbs`` answers what a subscriber missed (WAMP v2 ``_recover``, an SSE
``Last-Event-ID``, the WAMP v1 ``gos/history`` RPC) and keeps the history store following the
pushes' positions. It sits beside the ``Broker`` (broker.py) as ``PresenceVerbs`` and
``PatternVerbs`` do, so the broker's verbs do not each carry the history's rules.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from gos_web_socket.app.exceptions import ProtocolError
from gos_web_socket.app.history import Recovery
from gos_web_socket.app.position import Position
from gos_web_socket.app.push import Push, PushMode
from gos_web_socket.app.server.dispatch import rpc_failure
from gos_web_socket.app.server.session import Failure, Result

if TYPE_CHECKING:
    from gos_web_socket.app.server.connection import WampConnection
    from gos_web_socket.app.server.manager import TopicManager
    from gos_web_socket.app.server.topic import Topic

__all__ = ["HISTORY_RPC", "HistoryVerbs"]

logger = logging.getLogger(__name__)

HISTORY_RPC = "gos/history"
"""The server's own RPC: what a subscriber missed since a position (WAMP v1's recovery)."""


class HistoryVerbs:
    """Recoveries from the topic manager's history store (none: every recovery is empty)."""

    def __init__(self, manager: TopicManager) -> None:
        self.manager = manager

    def note(self, push: Push) -> None:
        """The store follows the log with every live push and refill that has a position; a
        read-back is an old push run again for a recovery, not news."""
        store = self.manager.history
        if store is not None and push.position is not None and push.mode is not PushMode.READ_BACK:
            store.note(push.position)

    async def recover(self, topic: Topic, since: Position | None) -> Recovery:
        """What a subscriber of ``topic`` missed after ``since``, for v1 and v2 alike.

        What the channel's history lacks is read back from the stream first (stream mode,
        ``HistoryStore.gap``). A v2 session holds the subscriber meanwhile (``Topic.hold``):
        pushes broadcast in the meantime follow the answer, not precede it.
        """
        store = self.manager.history
        if store is None or topic.history is None:
            return Recovery([], False, None)
        recovery = await store.recover(topic.id, since)
        logger.debug(
            "connection recovers %s since %s: %d publications, complete=%s",
            topic.id,
            since,
            len(recovery.publications),
            recovery.recovered,
        )
        return recovery

    async def call(self, connection: WampConnection, params: Any) -> Result | Failure:
        """``gos/history`` ``[channel, position|null]``: what the connection's subscription
        of ``channel`` missed since ``position`` (``Recovery.as_dict``)."""
        args = params if isinstance(params, list) else [params]
        if not 1 <= len(args) <= 2 or not isinstance(args[0], str):
            desc = f"{HISTORY_RPC} needs [channel, position|null]"
            return rpc_failure(HISTORY_RPC, desc, 400, params)
        channel = args[0]
        try:
            since = Position.parse(args[1] if len(args) > 1 else None, "position")
        except ProtocolError as exc:
            return rpc_failure(HISTORY_RPC, str(exc), 400, params, exc)
        entry = connection.subscriptions.get(channel)
        if entry is None:
            desc = f"{HISTORY_RPC}: subscribe to {channel} first (what arrives meanwhile is live)"
            return rpc_failure(HISTORY_RPC, desc, 403, params)
        return Result((await self.recover(entry[0], since)).as_dict())
