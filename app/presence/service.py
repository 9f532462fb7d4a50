"""The presence service (``gos_web_socket.presence``): who is in each channel of a presence
route, who is online, and the events that say when that changes.

Its own connections reach it through the broker (subscribe/unsubscribe on a presence route)
and the ``client_connected``/``client_disconnected`` events; other workers' through a
``PeerLink`` (peers.py). Each change of this process goes to its peers (the line and how it
applies: changes.py); each transition (a user's first or last connection, in a channel or at
all) becomes a debounced diff for the channel's watchers (diffs.py) and, on the one live origin
that emits for that user (emitter.py), a lifecycle event for the dispatcher's listeners and the
sinks (the AMQP outbox: outbox.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from gos_web_socket.app.limits import TokenBucket
from gos_web_socket.app.presence.base import (
    EVENTS_PREFIX,
    USER_CONNECTED,
    USER_JOINED,
    USER_LEFT,
    ChannelPresence,
    LifecycleSink,
    Member,
)
from gos_web_socket.app.presence.changes import apply_change, change_line
from gos_web_socket.app.presence.diffs import Diffs
from gos_web_socket.app.presence.emitter import LifecycleEmitter
from gos_web_socket.app.presence.state import PresenceState, Transition

if TYPE_CHECKING:
    from gos_web_socket.app.events import ClientEvent, EventDispatcher
    from gos_web_socket.app.server.manager import TopicManager
    from gos_web_socket.settings.limits import LimitsSettings
    from gos_web_socket.settings.presence import PresenceSettings

logger = logging.getLogger(__name__)


class Connection(Protocol):
    """What presence reads of a connection (``WampConnection`` is one)."""

    session_id: str

    @property
    def user(self) -> Any: ...

    def send_event(self, topic: str, payload: Any) -> bool: ...


class PeerLink(Protocol):
    """Where this process's changes go to the other workers or nodes (peers.py)."""

    def send(self, message: dict[str, Any]) -> None: ...


def bounded_info(info: Mapping[str, Any], limit: int) -> dict[str, Any]:
    """The user's info when its JSON fits ``limit`` bytes, else ``{}`` (never cut mid-way)."""
    if not info:
        return {}
    try:
        size = len(json.dumps(info, separators=(",", ":"), default=str).encode())
    except (TypeError, ValueError):
        return {}
    return dict(info) if size <= limit else {}


class QueryRates:
    """Presence queries per connection, each within ``presence_queries_per_second``."""

    def __init__(self, limits: LimitsSettings) -> None:
        self.rate = limits.presence_queries_per_second
        self.burst = limits.presence_queries_burst
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, session_id: str) -> bool:
        """Spend one query of ``session_id``; False over its rate."""
        bucket = self._buckets.get(session_id)
        if bucket is None:
            bucket = self._buckets[session_id] = TokenBucket(self.rate, self.burst)
        return bucket.take(asyncio.get_running_loop().time())

    def forget(self, session_id: str) -> None:
        """The connection is gone."""
        self._buckets.pop(session_id, None)


class Presence:
    """Members per channel and online users of this process and its peers."""

    def __init__(
        self,
        settings: PresenceSettings,
        limits: LimitsSettings,
        dispatcher: EventDispatcher,
        manager: TopicManager,
        sinks: Iterable[LifecycleSink] = (),
    ) -> None:
        self.settings = settings
        self.limits = limits
        self.manager = manager
        self.state = PresenceState()
        self.diffs = Diffs(settings.window, self._publish_diff)
        self.lifecycle = LifecycleEmitter(settings.lease, dispatcher, sinks)
        self.link: PeerLink | None = None
        self.stale = False
        """Presence from peers may be out of date (their link is down)."""
        self._members: dict[str, Member] = {}
        self._held: dict[str, dict[tuple[str, str | None], Transition]] = {}
        """Per reset origin, the leaves its reset made, held until its snapshot ends: a
        member it sends again was never gone; the others did leave."""
        self.queries = QueryRates(limits)

    @property
    def origin(self) -> str:
        """This process's name among its peers (``worker:N`` with workers)."""
        return self.lifecycle.origin

    # -- queries -----------------------------------------------------------------------------

    async def of(self, channel: str) -> ChannelPresence:
        """Who is in ``channel`` now (every worker's members once peers are linked)."""
        return ChannelPresence(channel, self.state.members(channel), self.stale)

    def is_online(self, user_id: str) -> bool:
        return self.state.is_online(str(user_id))

    def counts(self, channel: str) -> tuple[int, int]:
        return self.state.counts(channel)

    def is_member(self, channel: str, session_id: str) -> bool:
        """Whether the connection ``session_id`` is in ``channel`` (its subscribe was secured)."""
        return session_id in self.state.channels.get(channel, {})

    def allow_query(self, connection: Connection) -> bool:
        """Spend one of the connection's presence queries; False over its rate."""
        return self.queries.take(connection.session_id)

    @staticmethod
    def watched(uri: str) -> str | None:
        """The channel whose join/leave ``uri`` (``gos/presence/<channel>``) carries."""
        if uri.startswith(EVENTS_PREFIX) and len(uri) > len(EVENTS_PREFIX):
            return uri[len(EVENTS_PREFIX) :]
        return None

    # -- this process's connections ----------------------------------------------------------

    def member_of(self, connection: Connection) -> Member:
        member = self._members.get(connection.session_id)
        if member is None:
            user = connection.user
            user_id = None if user.id is None else str(user.id)
            info = bounded_info(user.info, self.limits.presence_info_bytes)
            member = Member(connection.session_id, user_id, info, self.origin)
            self._members[connection.session_id] = member
        return member

    def joined(self, connection: Connection, channel: str) -> None:
        """The connection subscribed to a channel of a presence route."""
        self._apply("join", channel, self.member_of(connection))

    def left(self, connection: Connection, channel: str) -> None:
        """The connection left a channel; one that is in none and never sent client_connected
        (an SSE stream gone before it opened) is forgotten here, as none will follow."""
        self._apply("leave", channel, self.member_of(connection))
        session_id = connection.session_id
        if session_id not in self.state.sessions and not self.state.holds(session_id):
            self._members.pop(session_id, None)

    def tracked(self) -> int:
        """How many of this process's connections presence keeps a member for."""
        return len(self._members)

    async def on_connected(self, event: ClientEvent) -> None:
        """``client_connected`` listener: the user is online."""
        self._apply("connect", None, self.member_of(event.connection))

    async def on_disconnected(self, event: ClientEvent) -> None:
        """``client_disconnected`` listener (after its topics were left): maybe offline."""
        session_id = event.connection.session_id
        member = self._members.pop(session_id, None)
        self.queries.forget(session_id)
        if member is None:
            return
        self._apply("disconnect", None, member)

    # -- peers (peers.py) --------------------------------------------------------------------

    def attach(self, link: PeerLink, origin: str) -> None:
        """Share this process's changes over ``link``, its members named ``origin``."""
        self.link = link
        self.lifecycle.join(origin)

    def _apply(self, op: str, channel: str | None, member: Member) -> None:
        """A change of this process's own: to the peers, then to the merged state."""
        if self.link is not None:
            self.link.send(change_line(op, channel, member))
        self._changed(apply_change(self.state, op, channel, member))

    def remote(self, origin: str, message: Mapping[str, Any]) -> None:
        """A peer's change, applied to the merged state (the peer is live)."""
        self.lifecycle.peer_up(origin)
        member = Member.from_dict(message["member"], origin)
        self._changed(apply_change(self.state, message.get("do"), message.get("channel"), member))

    def snapshot(self) -> list[dict[str, Any]]:
        """This process's own changes as peer messages, for a peer that just joined."""
        return [
            change_line("connect" if channel is None else "join", channel, member)
            for channel, member in self.state.of_origin(self.origin)
        ]

    def origin_gone(self, origin: str, knew: Iterable[str] | None = None) -> int:
        """A peer died: its members leave, and each user's events come from the one live
        origin that emits them (``emitter``), among those that ``knew`` the dead one when
        given (a newcomer never heard its members). Returns how many transitions there were."""
        among = self.lifecycle.peer_gone(origin, knew)
        self.origin_synced(origin)
        transitions = self.state.drop_origin(origin)
        for transition in transitions:
            self._changed(transition, among=among)
        return len(transitions)

    def origin_reset(self, origin: str) -> None:
        """A peer (re)started or came back: forget what it held, it sends its members again;
        the leaves wait for ``origin_synced`` (a leave and a join of the same user within the
        window also cancel out for watchers)."""
        held = self._held.setdefault(origin, {})
        for transition in self.state.drop_origin(origin):
            self._changed(transition, emit=False)
            held[(transition.member.user_id or "", transition.channel)] = transition

    def origin_synced(self, origin: str) -> None:
        """``origin``'s snapshot is complete: the members it did not send again left."""
        for transition in self._held.pop(origin, {}).values():
            self.lifecycle.emit(transition)

    # -- transitions -------------------------------------------------------------------------

    def _changed(
        self, transition: Transition | None, emit: bool = True, among: list[str] | None = None
    ) -> None:
        """A transition of the merged state (local or a peer's): diffs for this process's
        watchers, and the lifecycle event when this process is the user's emitter (a peer's
        line and ours crossing in flight still make exactly one event)."""
        if transition is None:
            return
        member, channel = transition.member, transition.channel
        assert member.user_id is not None  # anonymous connections make no transitions
        if channel is not None and transition.kind == USER_JOINED:
            self.diffs.joined(channel, member.user_id, member.info)
        elif channel is not None and transition.kind == USER_LEFT:
            self.diffs.left(channel, member.user_id)
        held = self._held.get(member.origin)
        back = transition.kind in (USER_CONNECTED, USER_JOINED)
        if back and held and held.pop((member.user_id, channel), None) is not None:
            return  # a member its origin's reset took away and its snapshot gave back
        if emit:
            self.lifecycle.emit(transition, among)

    async def settled(self) -> None:
        """Return once every lifecycle event so far reached the listeners and sinks."""
        await self.lifecycle.settled()

    def _publish_diff(self, channel: str, diff: dict[str, Any]) -> int:
        topic = self.manager.topics.get(EVENTS_PREFIX + channel)
        if topic is None:
            return 0
        diff["num_users"] = self.counts(channel)[1]
        diff["stale"] = self.stale
        return topic.broadcast(diff)

    def close(self) -> None:
        self.diffs.close()
        self.lifecycle.close()
