"""Meta events across workers (``server.workers`` > 1): the worker's end and the parent's.

Over the relay channel the dealer and the meta procedures already use (relay.py,
meta_workers.py), one JSON object a line:

- worker → parent ``meta_listen`` (``uris``: the meta topics with subscribers on that worker,
  sent whenever that set changes); the parent keeps the last one of each worker, forwards it to
  the others with ``from`` set, tells a worker that starts every other worker's, and a worker's
  death as an empty one;
- worker → parent ``meta_event`` (``uri``, ``args``, ``about``: meta_events.py ``About``), sent
  only while another worker listens to ``uri``; the parent forwards it to the other workers,
  and each sends it to its own subscribers of ``uri`` whom its route rules let see it.

A worker that dies sends no ``on_leave``, ``on_unregister`` … for what it held: the other
workers send their own subscribers those (meta_departures.py, relay.py ``on_gone``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from gos_web_socket.app.server.wamp2.meta_departures import Departures, listened

logger = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], None]
Forward = Callable[[int, dict[str, Any]], None]

Deliver = Callable[[str, list[Any], dict[str, str]], None]
"""Send another worker's event to this worker's subscribers (meta_events.py ``deliver``)."""


class EventPeers:
    """A worker's end: which meta topics the other workers listen to, and the events."""

    def __init__(self, send_up: Send) -> None:
        self.send_up = send_up
        self.listening: dict[int, frozenset[str]] = {}
        """The meta topics with subscribers on each other worker (those with any)."""
        self.deliver: Deliver | None = None
        """Set by the meta events: how an event from another worker reaches subscribers here."""
        self.departures = Departures()
        """The other workers' sessions, registrations and subscriptions, while this worker
        listens to their departures (sent here when their worker dies)."""

    def listened(self) -> bool:
        """Any other worker has a meta subscriber."""
        return bool(self.listening)

    def listen(self, uris: list[str]) -> None:
        """This worker's meta topics with subscribers changed: tell the others (with what
        the departures listened need: meta_departures.py ``KEEPS``)."""
        self.departures.keep(uris)
        self.send_up({"op": "meta_listen", "uris": listened(uris)})

    def event(self, uri: str, args: list[Any], about: dict[str, str]) -> None:
        """Send an event of this worker to the others, when any listens to ``uri``."""
        if not any(uri in uris for uris in self.listening.values()):
            return
        try:
            self.send_up({"op": "meta_event", "uri": uri, "args": args, "about": about})
        except (TypeError, ValueError) as exc:  # details JSON cannot carry: this worker's only
            logger.info("meta relay: %s event cannot cross workers: %s", uri, exc)

    def received(self, message: dict[str, Any]) -> None:
        """A ``meta_listen`` or ``meta_event`` line from the parent."""
        if message["op"] == "meta_listen":
            uris = frozenset(message["uris"])
            if uris:
                self.listening[message["from"]] = uris
            else:
                self.listening.pop(message["from"], None)
        elif self.deliver is not None:
            self.departures.track(
                message["from"], message["uri"], message["args"], message["about"]
            )
            self.deliver(message["uri"], message["args"], message["about"])

    def gone(self, worker: int) -> None:
        """Worker ``worker`` died: its departures to the subscribers here (meta_departures.py)."""
        for uri, args, about in self.departures.gone(worker):
            if self.deliver is not None:
                self.deliver(uri, args, about)


def relay_meta(
    forward: Callable[[int, dict[str, Any]], None],
    alive: set[int],
    worker: int,
    message: dict[str, Any],
) -> None:
    """The parent's part (relay.py ``ParentRelay``): an ask goes to every other running worker
    (and the asker learns how many), an answer to the asker."""
    if message.get("op") == "meta_answer":
        target = message.pop("to")
        if target in alive:
            forward(target, message | {"from": worker})
        return
    others = [other for other in alive if other != worker]
    for other in others:
        forward(other, message | {"from": worker})
    forward(worker, {"op": "meta_asked", "id": message["id"], "count": len(others)})


class ParentMeta:
    """The parent's end of every ``meta_*`` line: asks and answers (meta_workers.py), the
    workers' listened topics and their events."""

    def __init__(self, forward: Forward, alive: set[int]) -> None:
        self.forward = forward
        self.alive = alive
        """The running workers (the dealer relay's set, ``ParentRelay.alive``)."""
        self.listens: dict[int, list[str]] = {}

    def joined(self, worker: int) -> None:
        """A worker is up: it learns which meta topics the others listen to."""
        for other, uris in self.listens.items():
            if other != worker:
                self.forward(worker, {"op": "meta_listen", "uris": uris, "from": other})

    def gone(self, worker: int) -> None:
        """A worker died: the others stop sending it events."""
        if self.listens.pop(worker, None):
            self._others(worker, {"op": "meta_listen", "uris": [], "from": worker})

    def received(self, worker: int, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "meta_listen":
            if message["uris"]:
                self.listens[worker] = message["uris"]
            else:
                self.listens.pop(worker, None)
            self._others(worker, message | {"from": worker})
        elif op == "meta_event":
            self._others(worker, message | {"from": worker})
        else:
            relay_meta(self.forward, self.alive, worker, message)

    def _others(self, worker: int, message: dict[str, Any]) -> None:
        for other in sorted(self.alive):
            if other != worker:
                self.forward(other, message)
