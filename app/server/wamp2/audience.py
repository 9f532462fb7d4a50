"""Black/white listing by authid and authrole (PUBLISH ``exclude_authid``, ``exclude_authrole``,
``eligible_authid``, ``eligible_authrole``), and who a session is in WAMP terms.

The lists are turned into session ids when the topic hook broadcasts (the topic view it
received, topic_views.py ``PublishedTopic``; ``PatternVerbs.narrow``), among the channel's
subscribers then (exact and pattern): plain ``exclude`` / ``eligible`` session id lists, the
one path every broadcast already takes. A subscriber must be in every present eligible list and
in no exclude list (the spec).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gos_web_socket.app.exceptions import ProtocolError

if TYPE_CHECKING:
    from gos_web_socket.app.auth.user import User
    from gos_web_socket.app.server.wamp2.patterns import Reader

NOBODY = "0"
"""An ``eligible`` list of this one id reaches nobody (no session has id 0): what the lists
leave when no subscriber passes them (an empty ``eligible`` means everyone, as in v1)."""

KEYS = ("exclude_authid", "exclude_authrole", "eligible_authid", "eligible_authrole")


def identity(user: User, session_id: str) -> tuple[str, str]:
    """(authid, authrole) of a session, as WELCOME says them: an anonymous user is its
    session id and ``anonymous``; a user its id and its first role (``user`` without one)."""
    if user.is_anonymous:
        return session_id, "anonymous"
    return user.id or "", min(user.roles, default="user")


@dataclass(frozen=True, slots=True)
class Listing:
    """The authid/authrole lists of one PUBLISH (None: absent)."""

    exclude_authid: frozenset[str] | None = None
    exclude_authrole: frozenset[str] | None = None
    eligible_authid: frozenset[str] | None = None
    eligible_authrole: frozenset[str] | None = None

    @classmethod
    def parse(cls, options: dict[str, Any]) -> Listing | None:
        """The lists in PUBLISH ``options``; None when there are none.

        Raises:
            ProtocolError: a list that is not a list of strings.
        """
        found: dict[str, frozenset[str]] = {}
        for key in KEYS:
            if key not in options:
                continue
            value = options[key]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ProtocolError(f"PUBLISH option {key} must be a list of strings")
            found[key] = frozenset(value)
        return cls(**found) if found else None

    def passes(self, authid: str, authrole: str) -> bool:
        """A subscriber with this identity may get the event."""
        if self.exclude_authid is not None and authid in self.exclude_authid:
            return False
        if self.exclude_authrole is not None and authrole in self.exclude_authrole:
            return False
        if self.eligible_authid is not None and authid not in self.eligible_authid:
            return False
        return self.eligible_authrole is None or authrole in self.eligible_authrole

    def apply(
        self, audience: Iterable[Reader], exclude: list[str], eligible: list[str]
    ) -> list[str]:
        """Add to ``exclude`` the subscribers the lists refuse; returns the ``eligible`` to
        use: unchanged without eligible lists, else the subscribers that pass (within
        ``eligible`` when given), ``[NOBODY]`` when none does."""
        passing: set[str] = set()
        for reader in audience:
            session_id = reader.session_id
            if self.passes(*identity(reader.user, session_id)):
                passing.add(session_id)
            else:
                exclude.append(session_id)
        if self.eligible_authid is None and self.eligible_authrole is None:
            return eligible
        chosen = [s for s in eligible if s in passing] if eligible else sorted(passing)
        return chosen or [NOBODY]
