"""A candidate fix for our broadcast hot path, applied in the benchmark process only.

``apply_fast_broadcast()`` monkeypatches ``app.server.topic.Topic.broadcast`` and
``app.server.protocol.WampConnection`` so the per-subscriber loop does what the raw limit does:

* the loop reads ``connection.transport`` and ``connection.state`` inline and calls
  ``transport.write(frame)``, no ``write_frame()`` method call per subscriber;
* the slow-reader guard moves out of the loop: ``connection_made`` sets the transport's
  high-water mark to ``max_outgoing_buffer`` and asyncio calls ``pause_writing()`` once the
  unsent bytes pass it, which cuts the client off as ``write_frame`` did. No
  ``get_write_buffer_size()`` and no ``self.app`` property lookups per write.

The benchmark's system ``fix`` runs ours with this patch; the proposal is for the owners of
app/server/topic.py and app/server/protocol.py to adopt (docs/bench.md).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any


def apply_fast_broadcast() -> None:
    from app.message import dumps
    from app.server import protocol, topic

    open_state = protocol._STATE_OPEN
    connection_cls = protocol.WampConnection
    original_made = connection_cls.connection_made

    def connection_made(self: Any, transport: Any) -> None:
        original_made(self, transport)
        if not self._blocked:
            transport.set_write_buffer_limits(high=self.app.max_outgoing_buffer)

    def pause_writing(self: Any) -> None:
        transport = self.transport
        if transport is not None and self.state == open_state:
            self._cut_off(transport.get_write_buffer_size())

    def broadcast(
        self: Any, payload: Any, exclude: Collection[str] = (), eligible: Collection[str] = ()
    ) -> int:
        subscribers = self._subscribers
        if not subscribers:
            return 0
        if eligible:
            targets = [subscribers[s] for s in set(eligible) if s in subscribers]
        else:
            targets = list(subscribers.values())
        frame = self._frame(dumps([8, self.id, payload]).encode())
        skip = set(exclude) if exclude else ()
        sent = 0
        for connection in targets:
            transport = connection.transport
            if transport is None or connection.state != open_state:
                continue
            if skip and connection.session_id in skip:
                continue
            transport.write(frame)
            sent += 1
        return sent

    connection_cls.connection_made = connection_made
    connection_cls.pause_writing = pause_writing
    topic.Topic.broadcast = broadcast


def apply_coalesced_writes() -> None:
    """On top of the fast broadcast: frames for one connection are joined per loop turn.

    ``Topic.broadcast`` appends the frame to each subscriber's pending list and schedules one
    flush with ``loop.call_soon``; the flush writes each connection's frames with a single
    ``transport.write``. When the push handler drains several queued pushes in one loop turn,
    a subscriber costs one ``send()`` per turn instead of one per push; a lone push still
    leaves in the same loop turn.
    """
    import asyncio

    from app.message import dumps
    from app.server import protocol, topic

    apply_fast_broadcast()
    open_state = protocol._STATE_OPEN
    pending: dict[Any, list[bytes]] = {}
    scheduled = False

    def flush() -> None:
        nonlocal scheduled
        scheduled = False
        batch = list(pending.items())
        pending.clear()
        for connection, frames in batch:
            transport = connection.transport
            if transport is not None and connection.state == open_state:
                transport.write(frames[0] if len(frames) == 1 else b"".join(frames))

    def broadcast(
        self: Any, payload: Any, exclude: Collection[str] = (), eligible: Collection[str] = ()
    ) -> int:
        nonlocal scheduled
        subscribers = self._subscribers
        if not subscribers:
            return 0
        if eligible:
            targets = [subscribers[s] for s in set(eligible) if s in subscribers]
        else:
            targets = list(subscribers.values())
        frame = self._frame(dumps([8, self.id, payload]).encode())
        skip = set(exclude) if exclude else ()
        sent = 0
        for connection in targets:
            if skip and connection.session_id in skip:
                continue
            frames = pending.get(connection)
            if frames is None:
                pending[connection] = [frame]
            else:
                frames.append(frame)
            sent += 1
        if not scheduled:
            scheduled = True
            asyncio.get_running_loop().call_soon(flush)
        return sent

    topic.Topic.broadcast = broadcast
