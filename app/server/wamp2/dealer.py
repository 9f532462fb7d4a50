"""The dealer: which client procedure a call goes to, on this worker or another.

One per process (the ``Broker`` holds it; containers.py builds it). It keeps the registrations
(registrations.py) and, with several workers or nodes, claims and releases their URIs through
the relay (relay.py), so that a call finds its callee wherever it is registered. The calls in
flight are its ``invocations`` (invocations.py): CALL → INVOCATION → YIELD/ERROR →
RESULT/ERROR, with their timers and budgets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from gos_web_socket.app.server.wamp2.codes import (
    PROCEDURE_ALREADY_EXISTS,
    PROCEDURE_EXISTS_WITH_DIFFERENT_INVOCATION_POLICY,
)
from gos_web_socket.app.server.wamp2.invocations import Invocations
from gos_web_socket.app.server.wamp2.registrations import (
    EXACT,
    CalleeEnd,
    Procedure,
    Registration,
    Registrations,
    Terms,
)
from gos_web_socket.settings.models import LimitsSettings

if TYPE_CHECKING:
    from gos_web_socket.app.server.wamp2.meta_workers import MetaPeers

Key = tuple[str, str]
"""A registration's (match, URI)."""


class Relay(Protocol):
    """The other workers' procedures, with several workers (relay.py's ``WorkerRelay``)."""

    remote: dict[Key, Registration]
    meta: MetaPeers | None

    async def claim(self, uri: str, invoke: str = "single", match: str = "exact") -> bool: ...

    def policy(self, key: Key) -> str: ...

    def serving(self, uri: str, local: Procedure | None) -> Key | None: ...

    def pick(self, key: Key, local: Procedure | None) -> Registration | None: ...

    def release(self, uri: str, match: str = "exact") -> None: ...

    def weigh(self, key: Key, callees: int) -> None: ...


class Dealer:
    """Registrations, across workers through the relay, and the invocations in flight."""

    def __init__(self, limits: LimitsSettings | None = None) -> None:
        self.registrations = Registrations()
        self.invocations = Invocations(limits)
        """The calls in flight, with their budgets (``server.limits``)."""
        self.relay: Relay | None = None
        """With several workers: the other workers' procedures (relay.py); None: one process."""

    def procedure(self, uri: str) -> Registration | None:
        """The registration serving ``uri``: on this worker, else on another, or among both
        for a shared registration held on several workers (relay.py)."""
        serving = self.registrations.serving(uri)
        key = None if self.relay is None else self.relay.serving(uri, serving)
        if self.relay is not None and key is not None:
            here = serving is not None and (serving.match, serving.uri) == key
            found = self.relay.pick(key, serving if here else None)
            if found is not None or not here:
                return found
        return None if serving is None else serving.pick()

    def serving(self, uri: str) -> Procedure | None:
        """This worker's procedure a call of ``uri`` goes to, in the order over every worker's
        (relay.py ``serving``); None: none here (another worker's serves it, or nobody's)."""
        serving = self.registrations.serving(uri)
        if self.relay is None or serving is None:
            return serving
        return serving if self.relay.serving(uri, serving) == (serving.match, serving.uri) else None

    async def register(
        self,
        callee: CalleeEnd,
        uri: str,
        limit: int,
        terms: Terms = EXACT,
    ) -> Registration | str:
        """Register ``uri`` for ``callee`` on ``terms``; or the error URI refusing
        it (taken here or on another worker, or shared with another policy). Patterns
        (``match`` prefix or wildcard) are claimed alike across workers and nodes.

        Raises:
            LimitExceeded: ``callee`` holds ``limit`` registrations (``max_registrations``).
        """
        relay = self.relay
        if relay is not None and (terms.match, uri) in relay.remote:
            policy = relay.policy((terms.match, uri))
            if policy != terms.invoke:
                return PROCEDURE_EXISTS_WITH_DIFFERENT_INVOCATION_POLICY
            if policy == "single":
                return PROCEDURE_ALREADY_EXISTS
        conflict = self.registrations.conflict(callee.session_id, uri, terms)
        if conflict is not None:
            return conflict
        registration = self.registrations.add(callee, uri, limit, terms)
        if relay is None:
            return registration
        if await relay.claim(uri, terms.invoke, terms.match):
            if self.registrations.lookup(terms.match, uri) is None:  # its callee left meanwhile
                relay.release(uri, terms.match)
            else:
                self.resized(registration)
            return registration
        self.registrations.remove(callee.session_id, registration.id)
        return PROCEDURE_ALREADY_EXISTS

    def unregister(self, session_id: str, registration_id: int) -> Registration | None:
        """Drop a registration ``session_id`` holds; None: unknown, or another session's."""
        removed = self.registrations.remove(session_id, registration_id)
        if removed is None:
            return None
        self.dropped(*removed)
        return removed[0]

    def dropped(self, registration: Registration, emptied: bool) -> None:
        """A registration went: its URI is released when no callee is left, else the other
        workers learn how many callees serve it here."""
        if emptied:
            self.released(registration.terms.match, registration.uri)
        else:
            self.resized(registration)

    def resized(self, registration: Registration) -> None:
        """The number of callees here of a shared registration changed: the other workers
        weigh this worker by it (relay.py ``SharedRemote``)."""
        terms = registration.terms
        if self.relay is None or terms.invoke == "single":
            return
        procedure = self.registrations.lookup(terms.match, registration.uri)
        if procedure is not None:
            self.relay.weigh((terms.match, registration.uri), len(procedure.callees))

    def released(self, match: str, uri: str) -> None:
        """(match, URI) has no callee left here: the other workers stop sending its calls."""
        if self.relay is not None:
            self.relay.release(uri, match)

    def leave(self, session_id: str) -> None:
        """A session (or another worker) is gone: its registrations go, then its calls in
        flight end (``Invocations.leave``)."""
        for registration, emptied in self.registrations.leave(session_id):
            self.dropped(registration, emptied)
        self.invocations.leave(session_id)
