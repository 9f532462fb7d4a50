"""Presence across the workers of one node (``server.workers`` > 1), over the socket pair each
worker already has with the parent (``ParentLink``, app/workers.py), one JSON object a line:

- worker → parent: ``presence`` (a change of its own: join, leave, connect, disconnect),
  which the parent forwards to every other worker with ``from`` set; with ``to``, to that
  worker only (a snapshot for a worker that just started);
- parent → worker: the forwarded ``presence`` lines; ``presence_sync`` (send your own
  members to worker ``to``, after a ``presence_peer`` line that says you are live);
  ``presence_gone`` (a worker died: drop its members; each user's lifecycle events come from
  the survivor ``LifecycleEmitter.emitter`` names, the same in every survivor).

A worker that dies, SIGKILL included, closes its end of the socket pair: the parent sees it
at once (no lease needed within a node), and its members are gone from every survivor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from gos_web_socket.app.presence.service import Presence

if TYPE_CHECKING:
    from gos_web_socket.app.server.wamp2.relay import RelayEnd
    from gos_web_socket.settings.models import Settings

logger = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], None]
Forward = Callable[[int, dict[str, Any]], None]


def worker_origin(index: int) -> str:
    """The origin of a worker's members in every worker's presence."""
    return f"worker:{index}"


class Link(Protocol):
    """A worker's end of its socket pair (``ParentLink``, app/workers.py), as presence uses it."""

    @property
    def attached(self) -> RelayEnd | None: ...

    def attach(self, relay: RelayEnd) -> None: ...

    def send(self, message: dict[str, Any]) -> None: ...


def is_presence(message: Mapping[str, Any]) -> bool:
    """Whether a relay line is presence's (the others are the dealer's)."""
    return str(message.get("op", "")).startswith("presence")


class WorkerPeers:
    """A worker's end: shares its changes, applies the others'."""

    def __init__(self, presence: Presence, send_up: Send, index: int) -> None:
        self.presence = presence
        self.send_up = send_up
        presence.attach(self, worker_origin(index))

    def send(self, message: dict[str, Any]) -> None:
        self.send_up(message)

    def received(self, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "presence":
            self.presence.remote(worker_origin(message["from"]), message)
        elif op == "presence_peer":
            self.presence.lifecycle.peer_up(worker_origin(message["from"]))
        elif op == "presence_sync":
            self.presence.lifecycle.peer_up(worker_origin(message["to"]))
            self.send_up({"op": "presence_peer", "to": message["to"]})
            for line in self.presence.snapshot():
                self.send_up(line | {"to": message["to"]})
        elif op == "presence_gone":
            origin = worker_origin(message["worker"])
            dropped = self.presence.origin_gone(origin)
            logger.info("presence: %s gone, %d transitions", origin, dropped)
        else:
            logger.warning("presence relay: unknown message %r", op)


def attach_worker(
    presence: Presence, link: Link, index: int, settings: Settings
) -> WorkerPeers | None:
    """Presence lines of ``link`` go to this worker's peers, the others where they went (the
    dealer's relay). With ``presence.nodes`` the worker is a node of its own on RabbitMQ
    (cluster.py) and the parent's presence lines are ignored."""
    nodes = settings.presence.nodes.enabled
    peers = None if nodes else WorkerPeers(presence, link.send, index)
    link.attach(Split(peers, link.attached))
    return peers


class Split:
    """In front of the dealer's relay on one parent link: presence lines to presence's
    peers (None: ignored), the others on to the relay attached before."""

    def __init__(self, peers: WorkerPeers | None, rest: RelayEnd | None) -> None:
        self.peers = peers
        self.rest = rest

    def received(self, message: dict[str, Any]) -> None:
        if not is_presence(message):
            if self.rest is not None:
                self.rest.received(message)
        elif self.peers is not None:
            self.peers.received(message)


class PresenceHub:
    """The parent's end: forwards presence lines between workers, tells who joined and died."""

    def __init__(self, forward: Forward) -> None:
        self.forward = forward
        self.alive: set[int] = set()

    def joined(self, worker: int) -> None:
        """A worker is up: the others send it their members."""
        self.alive.add(worker)
        for other in sorted(self.alive - {worker}):
            self.forward(other, {"op": "presence_sync", "to": worker})

    def gone(self, worker: int) -> None:
        """A worker died: every survivor drops its members."""
        self.alive.discard(worker)
        for other in sorted(self.alive):
            self.forward(other, {"op": "presence_gone", "worker": worker})

    def received(self, worker: int, message: dict[str, Any]) -> None:
        message["from"] = worker
        target = message.pop("to", None)
        if target is not None:
            if target in self.alive:
                self.forward(target, message)
            return
        for other in self.alive:
            if other != worker:
                self.forward(other, message)
