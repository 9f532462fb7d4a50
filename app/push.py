"""What a push is, said once: the ``Push`` a server push handler hands the server and its topic.

The push handler (app/transports/handler.py) creates it and passes it through
``PushableServer.on_push(push)``, the broker and the topic dispatcher to the topic: nothing
about a push is ambient, so the way from a transport to a topic reads from the code. It says
which channel and data, through which provider, at which position of the log, and in which
mode:

- ``LIVE``: a push arriving now. Its topic's broadcasts are sent to the subscribers and, on a
  channel with history, recorded under the push's position.
- ``REFILL``: a push this node handled before it restarted, read back from the log at start
  (``stream.fill``). Broadcasts are recorded, and sent only to clients that recovered on this
  node and are behind the push (``Topic.replay``).
- ``READ_BACK``: a push read back from the log for recoveries older than a channel's history
  (``Backfill``). Broadcasts are only captured (``Capture``): nothing is sent or recorded.

The ``topic`` a ``PushableTopic.on_push`` receives is bound to its push (``BoundTopic``
in app/server/topic_views.py): ``topic.broadcast(payload)`` is recorded as part of the push.
A broadcast to *another* topic (e.g. ``server.topics[other].broadcast(...)``) is not part of
the push: it is a live broadcast of its own, sent now and recorded nowhere, in every mode (like
a timer's): a broadcast is part of a push only through the object that carries it, never by
being made while the push runs. Check ``topic.push.is_live`` before such side effects, or pass
``push=topic.push`` to make the broadcast part of the push (recorded at the push's position, a
refill, a capture) like the push's own topic's. Documented in docs/streams.md.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gos_web_socket.app.position import Position, Publication

if TYPE_CHECKING:
    from gos_web_socket.app.router import WampRequest


class PushMode(enum.Enum):
    """How a topic treats what it broadcasts during a push (see the module docstring)."""

    LIVE = "live"
    REFILL = "refill"
    READ_BACK = "read-back"


class Capture:
    """What topics of ``channels`` broadcast while pushes read back from the log run again.

    A ``READ_BACK`` push carries one: a topic of one of these channels hands its unfiltered
    broadcast here instead of recording or sending it.
    """

    __slots__ = ("channels", "publications")

    def __init__(self, channels: frozenset[str]) -> None:
        self.channels = channels
        self.publications: dict[str, list[Publication]] = {c: [] for c in channels}

    def take(self, channel: str, position: Position | None, payload: Any) -> None:
        """Keep the first broadcast of a push, as ``ChannelHistory.record`` does."""
        if position is None or channel not in self.channels:
            return
        kept = self.publications[channel]
        if not kept or kept[-1].position != position:
            kept.append(Publication(position, payload, time.monotonic()))


@dataclass(frozen=True, slots=True)
class Push:
    """One push on its way to its topic: the routed ``request`` (its ``matched`` channel),
    ``data``, the ``provider`` (the push handler's name), its ``position`` in the log (None:
    it has none, its broadcasts are not recorded), its ``mode`` and, for a read-back, the
    ``capture`` that collects what it broadcasts."""

    request: WampRequest
    data: Any
    provider: str
    position: Position | None = None
    mode: PushMode = PushMode.LIVE
    capture: Capture | None = None

    @classmethod
    def refill(
        cls, request: WampRequest, data: Any, provider: str, position: Position | None
    ) -> Push:
        """A push handled before a restart, run again to fill history (``REFILL``)."""
        return cls(request, data, provider, position, PushMode.REFILL)

    @classmethod
    def read_back(
        cls, request: WampRequest, data: Any, provider: str, position: Position, capture: Capture
    ) -> Push:
        """A push read back from the log for a recovery; its broadcasts go to ``capture``."""
        return cls(request, data, provider, position, PushMode.READ_BACK, capture)

    @property
    def channel(self) -> str:
        """The channel the push was routed to."""
        return self.request.matched

    @property
    def is_live(self) -> bool:
        """True for a push arriving now (send to everyone); False for refills and read-backs."""
        return self.mode is PushMode.LIVE
