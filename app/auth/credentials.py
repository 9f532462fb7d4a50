"""What a client presented to prove who it is: read once from the handshake (and v2 HELLO)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from http.cookies import CookieError, SimpleCookie
from types import MappingProxyType

from autobahn.websocket.types import ConnectionRequest

_EMPTY: Mapping[str, str] = MappingProxyType({})
"""No query parameters, no cookies: one read-only mapping for every such connection."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """The handshake's headers (lower-case names), query parameters and cookies, the remote
    address, and for WAMP v2 the ``ticket`` of AUTHENTICATE (None before, or without one)."""

    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    cookies: Mapping[str, str] = field(default_factory=dict)
    remote_address: str = ""
    ticket: str | None = field(default=None, repr=False)

    @classmethod
    def from_request(cls, request: ConnectionRequest, remote_address: str = "") -> Credentials:
        """autobahn's request: headers (lower-case), the first value of each query parameter."""
        raw = request.headers or {}
        if all(type(k) is str and k.islower() and type(v) is str for k, v in raw.items()):
            headers = raw  # autobahn's own dict is already that: one per connection, not two
        else:
            headers = {str(k).lower(): str(v) for k, v in raw.items()}
        query = {str(k): str(v[0]) for k, v in (request.params or {}).items() if v} or _EMPTY
        cookie = headers.get("cookie")
        return cls(headers, query, parse_cookies(cookie) if cookie else _EMPTY, remote_address)

    def with_ticket(self, ticket: str) -> Credentials:
        return replace(self, ticket=ticket)

    def bearer(self) -> str | None:
        """The token of ``Authorization: Bearer <token>`` (None without one)."""
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        return token.strip() or None if scheme.lower() == "bearer" else None


def parse_cookies(header: str) -> dict[str, str]:
    """A ``Cookie`` header as a dict; a malformed header counts as no cookies."""
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}
