"""The procedures clients registered: the callees of each URI, each registration owned by a session.

The dealer (dealer.py) asks this table which callee serves a URI; the session's callee role
(callee.py) adds and removes its own registrations here. Ids are router-scoped, from 1 up, one
per callee. A URI has one callee (``invoke: single``, the default) or several (shared
registration): the first REGISTER fixes the policy that picks one per call.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from gos_web_socket.app.limits import check_count
from gos_web_socket.app.server.wamp2.codes import (
    PROCEDURE_ALREADY_EXISTS,
    PROCEDURE_EXISTS_WITH_DIFFERENT_INVOCATION_POLICY,
)
from gos_web_socket.app.server.wamp2.matching import (
    MATCHES as MATCHES,  # callee.py's
    best,
)

POLICIES = ("single", "roundrobin", "random", "first", "last")
"""REGISTER ``invoke``: who of a URI's callees gets a call (shared registration)."""


class CalleeEnd(Protocol):
    """What the dealer needs of a callee's session: who it is, what it announced, a wire."""

    @property
    def session_id(self) -> str: ...

    @property
    def cancels(self) -> bool:
        """The callee announced ``call_canceling``: it understands INTERRUPT."""
        ...

    @property
    def progresses(self) -> bool:
        """The callee announced ``progressive_call_results``."""
        ...

    def send(self, message: list[Any]) -> bool: ...


@dataclass(frozen=True, slots=True)
class Terms:
    """The REGISTER options this dealer implements."""

    match: str = "exact"
    """``exact``, or a pattern: ``prefix`` or ``wildcard`` (``MATCHES``); a pattern's
    INVOCATION details carry the ``procedure`` called."""
    invoke: str = "single"
    """Who of a URI's callees gets a call (``POLICIES``)."""
    disclose_caller: bool = False
    """Every INVOCATION names its caller (when the route allows)."""


EXACT = Terms()


@dataclass(slots=True)
class Registration:
    """One procedure URI served by one callee session."""

    id: int
    uri: str
    callee: CalleeEnd
    terms: Terms = EXACT


class Picker:
    """An ``invoke`` policy's choice among callees, with the round-robin turn it keeps (one
    procedure's callees here, a shared URI's workers in relay.py)."""

    __slots__ = ("invoke", "turn")

    def __init__(self, invoke: str) -> None:
        self.invoke = invoke
        self.turn = 0
        """roundrobin: the index of the next callee."""

    def pick(self, callees: list[Registration]) -> Registration:
        """``roundrobin`` walks the callees in registration order, ``random`` draws one,
        ``last`` is the newest, ``first`` and ``single`` the oldest."""
        if self.invoke == "roundrobin":
            self.turn %= len(callees)
            chosen = callees[self.turn]
            self.turn += 1
            return chosen
        if self.invoke == "random":
            return random.choice(callees)  # noqa: S311  (load spreading, not a secret)
        return callees[-1] if self.invoke == "last" else callees[0]


class Procedure:
    """The callees of one URI, oldest first, and the policy that picks one per call.

    ``id`` is the registration id of the meta API (meta_lookups.py): its first callee's, kept
    while any callee is left, so that a shared registration keeps one id; ``created`` is when
    that first callee registered (ISO 8601)."""

    __slots__ = ("callees", "created", "id", "match", "picker", "uri")

    def __init__(self, first: Registration) -> None:
        self.id = first.id
        self.uri = first.uri
        self.match = first.terms.match
        self.picker = Picker(first.terms.invoke)
        self.created = datetime.now(UTC).isoformat()
        self.callees: list[Registration] = []

    @property
    def invoke(self) -> str:
        return self.picker.invoke

    def pick(self) -> Registration:
        """One callee by the procedure's policy."""
        return self.picker.pick(self.callees)


class RegistrationObserver(Protocol):
    """Who is told of the table's changes (the registration meta API, meta.py)."""

    def registered(self, registration: Registration, procedure: Procedure, first: bool) -> None:
        """``registration`` joined ``procedure``; ``first``: its first callee."""

    def unregistered(self, registration: Registration, procedure: Procedure, last: bool) -> None:
        """``registration`` left ``procedure``; ``last``: no callee is left."""


class Registrations:
    """Every registration of this process, by URI, by id and by owning session."""

    __slots__ = (
        "_by_id",
        "_by_procedure",
        "_by_session",
        "_by_uri",
        "_ids",
        "_patterns",
        "observers",
    )

    def __init__(self) -> None:
        self._by_uri: dict[tuple[str, str], Procedure] = {}
        """(match, URI) → its callees."""
        self._patterns: dict[tuple[str, str], Procedure] = {}
        """The prefix and wildcard ones again: a call looks there when no exact one serves."""
        self._by_id: dict[int, Registration] = {}
        self._by_procedure: dict[int, Procedure] = {}
        """``Procedure.id`` → the procedure (its first callee may have left)."""
        self._by_session: dict[str, set[int]] = {}
        self._ids = itertools.count(1)
        self.observers: list[RegistrationObserver] = []
        """Told of each registration and its end: the registration meta API (meta.py)."""

    def __len__(self) -> int:
        return len(self._by_id)

    def start_ids(self, first: int) -> None:
        """Number new registrations from ``first`` (each worker its own range: meta_workers.py)."""
        self._ids = itertools.count(first)

    def procedure(self, uri: str) -> Registration | None:
        """The registration a call of ``uri`` goes to (by its URI's policy); None: nobody's.

        An exact registration wins, then the longest matching prefix, then the wildcard whose
        literal components come first, left to right (the spec's order)."""
        procedure = self.serving(uri)
        return None if procedure is None else procedure.pick()

    def serving(self, uri: str) -> Procedure | None:
        """The callees a call of ``uri`` goes to (``procedure``'s order), without picking."""
        procedure = self._by_uri.get(("exact", uri))
        if procedure is None and self._patterns:
            key = best(self._patterns, uri)
            procedure = None if key is None else self._patterns[key]
        return procedure

    def get(self, registration_id: int) -> Registration | None:
        return self._by_id.get(registration_id)

    def procedure_of(self, registration_id: int) -> Procedure | None:
        """The procedure of a registration id: its ``Procedure.id`` or any callee's."""
        procedure = self._by_procedure.get(registration_id)
        registration = self._by_id.get(registration_id)
        if procedure is None and registration is not None:
            procedure = self.lookup(registration.terms.match, registration.uri)
        return procedure

    def lookup(self, match: str, uri: str) -> Procedure | None:
        """The callees of (match, URI) as registered."""
        return self._by_uri.get((match, uri))

    def procedures(self) -> list[Procedure]:
        """Every registered (match, URI)'s callees."""
        return list(self._by_uri.values())

    def conflict(self, session_id: str, uri: str, terms: Terms = EXACT) -> str | None:
        """The error URI refusing ``session_id`` a registration of ``uri`` on ``terms``;
        None: it may register."""
        invoke = terms.invoke
        procedure = self._by_uri.get((terms.match, uri))
        if procedure is None:
            return None
        if procedure.invoke != invoke:
            return PROCEDURE_EXISTS_WITH_DIFFERENT_INVOCATION_POLICY
        held = self._by_session.get(session_id, set())
        if invoke == "single" or any(r.id in held for r in procedure.callees):
            return PROCEDURE_ALREADY_EXISTS
        return None

    def add(self, callee: CalleeEnd, uri: str, limit: int, terms: Terms = EXACT) -> Registration:
        """Register ``uri`` for ``callee`` (``conflict`` said it may).

        Raises:
            LimitExceeded: ``callee`` would hold more than ``limit`` registrations
                (``server.limits.max_registrations``).
        """
        held = self._by_session.setdefault(callee.session_id, set())
        check_count("max_registrations", len(held), limit, "registrations")
        registration = Registration(next(self._ids), uri, callee, terms)
        key = (terms.match, uri)
        procedure = self._by_uri.get(key)
        if procedure is None:
            procedure = self._by_uri[key] = Procedure(registration)
            self._by_procedure[procedure.id] = procedure
        procedure.callees.append(registration)
        if terms.match != "exact":
            self._patterns[key] = procedure
        self._by_id[registration.id] = registration
        held.add(registration.id)
        for observer in self.observers:
            observer.registered(registration, procedure, len(procedure.callees) == 1)
        return registration

    def remove(self, session_id: str, registration_id: int) -> tuple[Registration, bool] | None:
        """Drop a registration ``session_id`` holds, and whether its URI has no callee left;
        None: unknown, or another session's."""
        held = self._by_session.get(session_id)
        if held is None or registration_id not in held:
            return None
        held.discard(registration_id)
        if not held:
            del self._by_session[session_id]
        return self._drop(registration_id)

    def leave(self, session_id: str) -> list[tuple[Registration, bool]]:
        """Drop every registration of a gone session; each, and whether its URI has no
        callee left."""
        return [self._drop(i) for i in self._by_session.pop(session_id, set())]

    def _drop(self, registration_id: int) -> tuple[Registration, bool]:
        registration = self._by_id.pop(registration_id)
        key = (registration.terms.match, registration.uri)
        procedure = self._by_uri[key]
        procedure.callees.remove(registration)
        if not procedure.callees:
            del self._by_uri[key]
            del self._by_procedure[procedure.id]
            self._patterns.pop(key, None)
        for observer in self.observers:
            observer.unregistered(registration, procedure, not procedure.callees)
        return registration, not procedure.callees
