"""What another worker's meta subscribers here must hear when that worker dies.

A worker that dies (SIGKILL, a crash) sends no ``on_unregister``, ``on_unsubscribe``,
``on_delete`` or ``on_leave`` for its registrations, subscriptions and sessions. A worker whose
meta subscribers listen to one of those topics therefore also listens to the events that open
and close what they concern (``KEEPS``), keeps what the other workers announce until it is
closed, and when a worker is gone sends its own subscribers the closing events in the order
a leaving session has them (broker.py ``Broker.leave``): registrations, subscriptions, then
the session. Only what opened while this worker listened is known here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

JOIN, LEAVE = "wamp.session.on_join", "wamp.session.on_leave"
REGISTER, UNREGISTER = "wamp.registration.on_register", "wamp.registration.on_unregister"
SUBSCRIBE, UNSUBSCRIBE = "wamp.subscription.on_subscribe", "wamp.subscription.on_unsubscribe"
DELETED = {
    "registration": "wamp.registration.on_delete",
    "subscription": "wamp.subscription.on_delete",
}

OPENS = {JOIN: "session", REGISTER: "registration", SUBSCRIBE: "subscription"}
CLOSES = {LEAVE: "session", UNREGISTER: "registration", UNSUBSCRIBE: "subscription"}
CLOSING = {"session": LEAVE, "registration": UNREGISTER, "subscription": UNSUBSCRIBE}
KEEPS = {
    LEAVE: (JOIN, LEAVE),
    UNREGISTER: (REGISTER, UNREGISTER),
    DELETED["registration"]: (REGISTER, UNREGISTER),
    UNSUBSCRIBE: (SUBSCRIBE, UNSUBSCRIBE),
    DELETED["subscription"]: (SUBSCRIBE, UNSUBSCRIBE),
}
"""A departure topic listened here → the topics the other workers must send for it."""

Key = tuple[str, Any]
"""(family, id): a session's id, a registration's or a subscription's."""
Closing = tuple[list[Any], dict[str, str]]
"""A member's closing event: its arguments and whom it concerns (meta_events.py ``About``)."""
Event = tuple[str, list[Any], dict[str, str]]


def listened(uris: Iterable[str]) -> list[str]:
    """The meta topics to ask the other workers for: ``uris`` and what their departures need."""
    wanted = set(uris)
    return sorted(wanted.union(*(KEEPS.get(uri, ()) for uri in wanted)))


class Departures:
    """The other workers' open sessions, registrations and subscriptions, by worker."""

    def __init__(self) -> None:
        self.kept: dict[int, dict[Key, dict[Any, Closing]]] = {}
        """Worker → (family, id) → member session → its closing event."""
        self.families: frozenset[str] = frozenset()
        """The families kept (those whose departure topics are listened here)."""

    def keep(self, uris: Iterable[str]) -> None:
        """This worker now listens to ``uris``: keep what their departures need, drop the rest."""
        self.families = frozenset(
            OPENS[t] for uri in uris for t in KEEPS.get(uri, ()) if t in OPENS
        )
        for held in self.kept.values():
            for key in [k for k in held if k[0] not in self.families]:
                del held[key]

    def track(self, worker: int, uri: str, args: list[Any], about: dict[str, str]) -> None:
        """An event of worker ``worker``: what it opens is kept, what it closes forgotten."""
        family = OPENS.get(uri) or CLOSES.get(uri)
        if family not in self.families or not args:
            return
        if uri == JOIN:
            if isinstance(args[0], dict):
                details = args[0]
                session = details.get("session")
                closing = [session, details.get("authid"), details.get("authrole")]
                self.kept.setdefault(worker, {})[family, session] = {session: (closing, about)}
            return
        held = self.kept.setdefault(worker, {})
        key: Key = (family, args[0]) if family == "session" else (family, args[-1])
        if uri in OPENS:
            held.setdefault(key, {})[args[0]] = (list(args), about)
            return
        members = held.get(key, {})
        members.pop(args[0], None)
        if not members:
            held.pop(key, None)

    def gone(self, worker: int) -> Iterator[Event]:
        """The closing events of worker ``worker``'s members, now that it died."""
        held = self.kept.pop(worker, {})
        for family in ("registration", "subscription", "session"):
            for (kind, _), members in held.items():
                if kind != family:
                    continue
                for args, about in members.values():
                    yield CLOSING[family], args, about
                if family in DELETED and members:
                    args, about = list(members.values())[-1]
                    yield DELETED[family], args, about
