"""``authentication.providers.jwt``: a JSON Web Token verified locally with PyJWT.

What is checked, in order: size, shape, the header's ``alg`` against the allow-list (``none``
never passes; the settings refuse it too), the key of that algorithm's family (an HMAC
secret for HS*, a public key or a JWKS entry for RS*/ES*/PS*: an RSA public key can never be
used as an HMAC secret), the signature, then ``exp`` / ``nbf`` / ``iat`` (with ``leeway``),
``aud``, ``iss`` and the required claims. The user id is the ``sub`` claim (configurable).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import jwt
from jwt.exceptions import (
    DecodeError,
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAlgorithmError,
    InvalidAudienceError,
    InvalidIssuedAtError,
    InvalidIssuerError,
    InvalidKeyError,
    InvalidSignatureError,
    InvalidTokenError,
    MissingRequiredClaimError,
    PyJWKError,
    PyJWKSetError,
)

from gos_web_socket.app.auth.credentials import Credentials
from gos_web_socket.app.auth.providers import AuthenticationProvider
from gos_web_socket.app.auth.user import User
from gos_web_socket.app.exceptions import AuthenticationFailed, ConfigurationError
from gos_web_socket.settings.auth import HMAC_ALGORITHMS, JwtProviderSettings

REASONS = (
    "malformed",
    "oversized",
    "alg_none",
    "alg_not_allowed",
    "unknown_key",
    "bad_signature",
    "expired",
    "not_yet_valid",
    "bad_audience",
    "bad_issuer",
    "missing_claim",
    "no_user_id",
)
"""Every ``AuthenticationFailed.reason`` this provider gives."""

_ERRORS: tuple[tuple[type[Exception], str], ...] = (
    (ExpiredSignatureError, "expired"),
    (ImmatureSignatureError, "not_yet_valid"),
    (InvalidIssuedAtError, "not_yet_valid"),
    (InvalidAudienceError, "bad_audience"),
    (InvalidIssuerError, "bad_issuer"),
    (MissingRequiredClaimError, "missing_claim"),
    (InvalidAlgorithmError, "alg_not_allowed"),
    (InvalidKeyError, "bad_signature"),
    (InvalidSignatureError, "bad_signature"),
    (DecodeError, "malformed"),
)


class JwtProvider(AuthenticationProvider):
    """Reads a token from the configured sources and verifies it."""

    name = "jwt"

    def __init__(self, settings: JwtProviderSettings, max_token_size: int = 8192) -> None:
        self.settings = settings
        self.max_token_size = max_token_size
        self.algorithms = list(settings.algorithms)
        secret = settings.secret
        self._secret = secret.get_secret_value().encode() if secret is not None else None
        self._public_key: Any = None
        self._jwks: dict[str | None, Any] = {}
        self._load_keys()

    def _load_keys(self) -> None:
        settings = self.settings
        try:
            if settings.public_key is not None:
                self._public_key = settings.public_key.encode()
            elif settings.public_key_file is not None:
                self._public_key = settings.public_key_file.read_bytes()
            elif settings.jwks_file is not None:
                jwks = jwt.PyJWKSet.from_dict(json.loads(settings.jwks_file.read_text()))
                self._jwks = {key.key_id: key for key in jwks.keys}
        except (OSError, ValueError, PyJWKError, PyJWKSetError) as exc:
            raise ConfigurationError(
                [f"authentication.providers.jwt: cannot load the public key: {exc}"]
            ) from None

    # -- where the token is -------------------------------------------------------------------

    def token_of(self, credentials: Credentials) -> str | None:
        """The first token found: v2 ticket, query parameter, cookie, then Bearer header."""
        sources = self.settings.sources
        if sources.ticket and credentials.ticket is not None:
            return credentials.ticket
        if sources.query_parameter and sources.query_parameter in credentials.query:
            return credentials.query[sources.query_parameter]
        if sources.cookie and sources.cookie in credentials.cookies:
            return credentials.cookies[sources.cookie]
        if sources.header:
            return credentials.bearer()
        return None

    def supports(self, credentials: Credentials) -> bool:
        return self.token_of(credentials) is not None

    # -- verification -------------------------------------------------------------------------

    def authenticate(self, credentials: Credentials) -> User:
        token = self.token_of(credentials) or ""
        claims = self.verify(token)
        settings = self.settings
        user_id = claims.get(settings.user_id_claim)
        if isinstance(user_id, int) and not isinstance(user_id, bool):
            user_id = str(user_id)
        if not isinstance(user_id, str) or not user_id:
            raise AuthenticationFailed("no_user_id", f"no {settings.user_id_claim} claim")
        roles = claims.get(settings.roles_claim, [])
        if isinstance(roles, str):
            roles = [roles]
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise AuthenticationFailed("malformed", f"{settings.roles_claim} is not a list")
        info = claims.get(settings.info_claim, {})
        exp = claims.get("exp")
        return User(
            id=user_id,
            roles=frozenset(roles),
            claims=claims,
            info=info if isinstance(info, Mapping) else {"value": info},
            expires_at=float(exp) if isinstance(exp, int | float) else None,
            provider=self.name,
            token=token,
        )

    def verify(self, token: str) -> dict[str, Any]:
        """The verified claims of ``token``.

        Raises:
            AuthenticationFailed: with one of ``REASONS``.
        """
        if len(token.encode()) > self.max_token_size:
            raise AuthenticationFailed("oversized", f"token over {self.max_token_size} bytes")
        try:
            header = jwt.get_unverified_header(token)
        except InvalidTokenError:
            raise AuthenticationFailed("malformed", "not a JWT") from None
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm.lower() == "none":
            raise AuthenticationFailed("alg_none", "unsigned token (alg none)")
        if algorithm not in self.algorithms:
            raise AuthenticationFailed("alg_not_allowed", f"algorithm {algorithm} not allowed")
        key = self._key_for(algorithm, header.get("kid"))
        settings = self.settings
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],  # the one the key belongs to, never the others
                audience=settings.audience,
                issuer=settings.issuer,
                leeway=settings.leeway,
                options={"require": list(settings.required_claims), "verify_sub": False},
            )
        except InvalidTokenError as exc:
            raise AuthenticationFailed(_reason(exc), "token refused") from None
        return claims

    def _key_for(self, algorithm: str, kid: Any) -> Any:
        """The key of ``algorithm``'s family: an HMAC secret never verifies RS/ES and back."""
        if algorithm in HMAC_ALGORITHMS:
            if self._secret is None:
                raise AuthenticationFailed("alg_not_allowed", f"no secret for {algorithm}")
            return self._secret
        if self._public_key is not None:
            return self._public_key
        if not self._jwks:
            raise AuthenticationFailed("alg_not_allowed", f"no public key for {algorithm}")
        entry = self._jwks.get(kid) if kid is not None else None
        if entry is None and kid is None and len(self._jwks) == 1:
            entry = next(iter(self._jwks.values()))
        if entry is None:
            raise AuthenticationFailed("unknown_key", "no key with that kid")
        return entry.key


def _reason(exc: Exception) -> str:
    for error, reason in _ERRORS:
        if isinstance(exc, error):
            return reason
    return "malformed"
