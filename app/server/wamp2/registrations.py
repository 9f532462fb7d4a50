"""The procedures clients registered: one callee per URI, each registration owned by a session.

The dealer (dealer.py) asks this table which callee serves a URI; the session's callee role
(callee.py) adds and removes its own registrations here. Ids are router-scoped, from 1 up.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Protocol

from gos_web_socket.app.limits import check_count


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


@dataclass(slots=True)
class Registration:
    """One procedure URI served by one callee session."""

    id: int
    uri: str
    callee: CalleeEnd


class Registrations:
    """Every registration of this process, by URI, by id and by owning session."""

    __slots__ = ("_by_id", "_by_session", "_by_uri", "_ids")

    def __init__(self) -> None:
        self._by_uri: dict[str, Registration] = {}
        self._by_id: dict[int, Registration] = {}
        self._by_session: dict[str, set[int]] = {}
        self._ids = itertools.count(1)

    def __len__(self) -> int:
        return len(self._by_id)

    def procedure(self, uri: str) -> Registration | None:
        """The registration serving ``uri``; None: no client registered it."""
        return self._by_uri.get(uri)

    def add(self, callee: CalleeEnd, uri: str, limit: int) -> Registration | None:
        """Register ``uri`` for ``callee``; None when another registration holds it.

        Raises:
            LimitExceeded: ``callee`` would hold more than ``limit`` registrations
                (``server.limits.max_registrations``).
        """
        if uri in self._by_uri:
            return None
        held = self._by_session.setdefault(callee.session_id, set())
        check_count("max_registrations", len(held), limit, "registrations")
        registration = Registration(next(self._ids), uri, callee)
        self._by_uri[uri] = registration
        self._by_id[registration.id] = registration
        held.add(registration.id)
        return registration

    def remove(self, session_id: str, registration_id: int) -> Registration | None:
        """Drop a registration ``session_id`` holds; None: unknown, or another session's."""
        held = self._by_session.get(session_id)
        if held is None or registration_id not in held:
            return None
        held.discard(registration_id)
        if not held:
            del self._by_session[session_id]
        registration = self._by_id.pop(registration_id)
        del self._by_uri[registration.uri]
        return registration

    def leave(self, session_id: str) -> list[str]:
        """Drop every registration of a gone session; their URIs."""
        uris = []
        for registration_id in self._by_session.pop(session_id, set()):
            registration = self._by_id.pop(registration_id)
            del self._by_uri[registration.uri]
            uris.append(registration.uri)
        return uris
