"""Who is on a connection: ``connection.user``, set once by the authenticator at the handshake."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class User:
    """An authenticated user (``id`` set) or the anonymous one (``id`` None).

    ``claims`` are the verified token's claims (or what a custom provider put there), ``info``
    the public part topics may show to others, ``expires_at`` the ``exp`` as a Unix time.
    """

    id: str | None = None
    roles: frozenset[str] = frozenset()
    claims: Mapping[str, Any] = field(default_factory=dict)
    info: Mapping[str, Any] = field(default_factory=dict)
    expires_at: float | None = None
    provider: str = "anonymous"
    token: str | None = field(default=None, repr=False)
    """The credential it was authenticated with (never logged; ``find_token_for_connection``)."""

    @property
    def is_anonymous(self) -> bool:
        return self.id is None

    @property
    def username(self) -> str | None:
        """GOS's name for the user id."""
        return self.id

    def has_role(self, *roles: str) -> bool:
        """True when the user holds at least one of ``roles``."""
        return not self.roles.isdisjoint(roles)


ANONYMOUS = User()
"""Every connection's user until (unless) a provider authenticates it."""
