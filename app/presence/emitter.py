"""Which origin sends a user's lifecycle events, and their delivery in order.

Every origin (a worker, a node) sees every transition of the merged state; exactly one of the
live ones sends each user's lifecycle events to the dispatcher's listeners and the sinks (the
AMQP outbox), chosen by rendezvous hashing over the live origins, so that every origin that
sees the same live set chooses the same one.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING

from gos_web_socket.app.presence.base import LifecycleSink, PresenceEvent
from gos_web_socket.app.presence.state import Transition

if TYPE_CHECKING:
    from gos_web_socket.app.events import EventDispatcher


class LifecycleEmitter:
    """This origin's share of the lifecycle events: those of the users it is the emitter of."""

    def __init__(
        self, lease: float, dispatcher: EventDispatcher, sinks: Iterable[LifecycleSink] = ()
    ) -> None:
        self.lease = lease
        self.dispatcher = dispatcher
        self.sinks = list(sinks)
        self.origin = "local"
        """This process's name among its peers (``worker:N`` with workers)."""
        self.since: float | None = None
        """When this process first joined its peers (``join``)."""
        self.peers: dict[str, float] = {}
        """The other live origins (workers or nodes) this process hears from, and since when."""
        self._outgoing: deque[PresenceEvent] = deque()
        self._drain: asyncio.Task[None] | None = None

    def join(self, origin: str) -> None:
        """This process is ``origin`` among its peers from now on."""
        self.origin = origin
        if self.since is None:
            self.since = time.monotonic()

    def peer_up(self, origin: str) -> None:
        """``origin`` is live: it counts in the choice of who emits a user's events."""
        if origin != self.origin:
            self.peers.setdefault(origin, time.monotonic())

    def peer_gone(self, origin: str, knew: Iterable[str] | None) -> list[str] | None:
        """``origin`` died: the origins that choose its users' emitter (this one, and those
        of ``knew`` still live: a newcomer never heard the dead one's members), None: all."""
        self.peers.pop(origin, None)
        return None if knew is None else [self.origin, *(o for o in knew if o in self.peers)]

    def emitters(self) -> list[str]:
        """The origins that may emit: those live for a lease (a newcomer has not yet heard every
        member, and never hears a dead peer's), or every live one while none is that old."""
        settled = time.monotonic() - self.lease
        live = {self.origin: self.since or 0.0, **self.peers}
        return [o for o, since in live.items() if since <= settled] or list(live)

    def emitter(self, user_id: str, among: Iterable[str] | None = None) -> str:
        """The origin that sends ``user_id``'s lifecycle events: the same on every peer that
        sees the same live set (rendezvous hashing: users spread over origins, and only a
        dead origin's users move)."""
        return max(
            self.emitters() if among is None else among,
            key=lambda origin: (zlib.crc32(f"{origin}|{user_id}".encode()), origin),
        )

    def emit(self, transition: Transition, among: list[str] | None = None) -> None:
        """The lifecycle event of ``transition`` when this process is the user's emitter."""
        member = transition.member
        assert member.user_id is not None
        if self.emitter(member.user_id, among) != self.origin:
            return
        event = PresenceEvent(
            transition.kind, member.user_id, transition.channel, member.info, self.origin
        )
        self._outgoing.append(event)
        if self._drain is None or self._drain.done():
            self._drain = asyncio.get_running_loop().create_task(self._deliver())

    async def _deliver(self) -> None:
        """Lifecycle events in order: the sinks take each at once, then the listeners run."""
        while self._outgoing:
            event = self._outgoing.popleft()
            for sink in self.sinks:
                sink.emit(event)
            await self.dispatcher.dispatch(event.kind, event)

    async def settled(self) -> None:
        """Return once every lifecycle event so far reached the listeners and sinks."""
        while self._drain is not None and not self._drain.done():
            await asyncio.shield(self._drain)

    def close(self) -> None:
        if self._drain is not None:
            self._drain.cancel()
