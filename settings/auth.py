"""The ``authentication`` node: who may connect, and how the built-in JWT provider verifies.

Kept apart from ``settings/models.py`` (which only adds the node) so the identity settings read
as one piece. Every rule here turns a dangerous configuration into a start-up error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384")
ALGORITHMS = HMAC_ALGORITHMS + ASYMMETRIC_ALGORITHMS
"""What ``providers.jwt.algorithms`` may list; ``none`` never."""


class _AuthNode(BaseModel):
    """Unknown keys are errors, an empty node is the defaults (as every node of the tree)."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_node(cls, data: Any) -> Any:
        return {} if data is None else data


class TokenSources(_AuthNode):
    """Where the JWT provider looks for a token, in this order; null or false turns one off."""

    query_parameter: str | None = Field(default="token", min_length=1)
    cookie: str | None = Field(default=None, min_length=1)
    header: bool = True
    """``Authorization: Bearer <token>`` (not for browsers: they cannot set WebSocket headers)."""
    ticket: bool = True
    """WAMP v2 HELLO ``authmethods: ["ticket"]``: CHALLENGE, then AUTHENTICATE carries it."""


class JwtProviderSettings(_AuthNode):
    """``authentication.providers.jwt``: verify a JWT locally with PyJWT (no backend call)."""

    enabled: bool = False
    algorithms: list[str] = Field(default_factory=lambda: ["HS256"], min_length=1)
    secret: SecretStr | None = None
    public_key: str | None = None
    """An RSA or EC public key in PEM (``-----BEGIN PUBLIC KEY-----``)."""
    public_key_file: Path | None = None
    jwks_file: Path | None = None
    """A JSON Web Key Set file; the token's ``kid`` picks the key."""
    audience: list[str] | None = None
    issuer: str | None = None
    leeway: float = Field(
        default=0.0, ge=0, description="seconds of clock skew allowed on exp/nbf/iat"
    )
    required_claims: list[str] = Field(default_factory=list)
    user_id_claim: str = Field(default="sub", min_length=1)
    roles_claim: str = Field(default="roles", min_length=1)
    info_claim: str = Field(default="info", min_length=1)
    sources: TokenSources = Field(default_factory=TokenSources)

    @field_validator("audience", mode="before")
    @classmethod
    def _one_audience(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("algorithms")
    @classmethod
    def _allowed(cls, value: list[str]) -> list[str]:
        for name in value:
            if name.lower() == "none":
                raise ValueError("'none' is never allowed: unsigned tokens prove nothing")
            if name not in ALGORITHMS:
                raise ValueError(f"unknown algorithm {name!r} (allowed: {', '.join(ALGORITHMS)})")
        return value

    @model_validator(mode="after")
    def _keys_for_algorithms(self) -> Self:
        if not self.enabled:
            return self
        hmac = [a for a in self.algorithms if a in HMAC_ALGORITHMS]
        asymmetric = [a for a in self.algorithms if a not in HMAC_ALGORITHMS]
        if hmac and self.secret is None:
            raise ValueError(f"secret is required for {', '.join(hmac)}")
        if self.secret is not None:
            secret = self.secret.get_secret_value()
            if "-----BEGIN" in secret:
                raise ValueError("secret holds a PEM key: a public key is not an HMAC secret")
            if len(secret.encode()) < 32:
                raise ValueError("secret must be at least 32 bytes (RFC 7518 section 3.2)")
        keys = [self.public_key, self.public_key_file, self.jwks_file]
        if asymmetric and not any(key is not None for key in keys):
            raise ValueError(
                f"public_key, public_key_file or jwks_file is required for {', '.join(asymmetric)}"
            )
        if sum(key is not None for key in keys) > 1:
            raise ValueError("set only one of public_key, public_key_file and jwks_file")
        return self


class AuthProvidersSettings(_AuthNode):
    jwt: JwtProviderSettings = Field(default_factory=JwtProviderSettings)


class AuthenticationSettings(_AuthNode):
    """``authentication``: providers tried in order; the first that finds a credential decides.

    A presented credential that fails is refused whatever ``allow_anonymous`` says; a
    connection with no credential is anonymous when ``allow_anonymous`` (GOS's default).
    """

    allow_anonymous: bool = True
    max_token_size: int = Field(
        default=8192, ge=256, description="bytes; a longer token is refused"
    )
    providers: AuthProvidersSettings = Field(default_factory=AuthProvidersSettings)
