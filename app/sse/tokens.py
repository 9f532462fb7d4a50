"""Mercure's JWTs: where a request carries one, and what it grants.

A token is verified by ``authentication.providers.jwt``'s rules (app/auth/jwt.py: algorithm
allow-list, ``exp``, ``aud``, ``iss``), with that provider's secret unless ``mercure`` names its
own publisher or subscriber secret; the provider's ``required_claims`` are required but for
``sub`` (MercureBundle sets none), which becomes the user when present. Grants are the 0.x
``mercure`` claim (also read under ``https://mercure.rocks/``): ``publish`` and ``subscribe``
selector lists. Tokens never reach a log line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import SecretStr

from gos_web_socket.app.auth.jwt import JwtProvider
from gos_web_socket.app.auth.user import ANONYMOUS, User
from gos_web_socket.app.exceptions import AuthenticationFailed, MalformedCredentials, ProtocolError
from gos_web_socket.app.sse.selectors import Selectors
from gos_web_socket.settings.auth import AuthenticationSettings
from gos_web_socket.settings.mercure import MercureSettings

Role = Literal["publish", "subscribe"]
CLAIMS = ("mercure", "https://mercure.rocks/")


@dataclass(frozen=True, slots=True)
class Grant:
    """What one verified token allows: selectors of its role (None: the claim is absent)."""

    selectors: Selectors | None
    user: User
    expires_at: float | None


def token_of(headers: Mapping[str, str], cookie: str) -> str | None:
    """``Authorization: Bearer`` (the scheme in any case) first, then the cookie.

    Raises:
        MalformedCredentials: an ``Authorization`` header that is not a Bearer token.
    """
    header = headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise MalformedCredentials("Authorization must be 'Bearer <token>'")
        return value.strip()
    raw = headers.get("cookie")
    if raw:
        try:
            jar: SimpleCookie = SimpleCookie(raw)
        except CookieError:
            return None
        morsel = jar.get(cookie)
        if morsel is not None and morsel.value:
            return morsel.value
    return None


def check_origin(headers: Mapping[str, str], allowed: list[str]) -> None:
    """A publish authenticated by the cookie comes from an allowed origin (Mercure's
    ``publish_origins``: a page elsewhere could otherwise publish with the browser's cookie):
    the ``Origin`` header, else the ``Referer``'s origin.

    Raises:
        MalformedCredentials: neither header, or an origin not in ``allowed`` (400).
    """
    origin = headers.get("origin")
    if origin is None:
        referer = headers.get("referer")
        if not referer:
            raise MalformedCredentials(
                'an "Origin" or a "Referer" HTTP header must be present to use the cookie'
            )
        parts = urlsplit(referer)
        origin = f"{parts.scheme}://{parts.netloc}"
    if "*" not in allowed and origin not in allowed:
        raise MalformedCredentials(
            f'"{origin}" is not a valid origin (allowed: those in mercure.publish_origins)'
        )


def _selectors(claims: Mapping[str, Any], role: Role) -> Selectors | None:
    for name in CLAIMS:
        node = claims.get(name)
        if isinstance(node, Mapping) and role in node:
            values = node[role]
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise AuthenticationFailed("malformed", f"{name}.{role} is not a list of strings")
            try:
                return Selectors.parse(values)
            except ProtocolError as exc:
                raise AuthenticationFailed("malformed", f"{name}.{role}: {exc}") from None
    return None


class MercureTokens:
    """Verifies publisher and subscriber tokens (``mercure.*_secret`` or the JWT provider's)."""

    def __init__(self, auth: AuthenticationSettings, mercure: MercureSettings) -> None:
        self.cookie = mercure.cookie
        self.publish_origins = mercure.publish_origins
        base = auth.providers.jwt
        self._verifiers: dict[Role, JwtProvider] = {}
        secrets: dict[Role, SecretStr | None] = {
            "publish": mercure.publisher_secret,
            "subscribe": mercure.subscriber_secret,
        }
        for role, secret in secrets.items():
            required = [claim for claim in base.required_claims if claim != "sub"]
            update: dict[str, Any] = {"enabled": True, "required_claims": required}
            if secret is not None:
                update |= {"secret": secret, "algorithms": ["HS256"]}
            settings = base.model_copy(update=update)
            self._verifiers[role] = JwtProvider(settings, auth.max_token_size)

    def grant(self, headers: Mapping[str, str], role: Role) -> Grant | None:
        """The grant of the request's token for ``role``; None when it carries none.

        Raises:
            ProtocolError: a malformed ``Authorization`` header, or a publisher's cookie sent
                from an origin not in ``mercure.publish_origins`` (400).
            AuthenticationFailed: a token that does not verify (401).
        """
        token = token_of(headers, self.cookie)
        if token is None:
            return None
        if role == "publish" and "authorization" not in headers:  # the cookie's
            check_origin(headers, self.publish_origins)
        claims = self._verifiers[role].verify(token)
        sub = claims.get("sub")
        user = ANONYMOUS
        if isinstance(sub, str) and sub:
            user = User(id=sub, claims=claims, provider="mercure", token=token)
        exp = claims.get("exp")
        expires = float(exp) if isinstance(exp, int | float) else None
        return Grant(_selectors(claims, role), user, expires)
