"""Providers tried in order → ``connection.user``; refusals logged (rate-limited) and counted.

WAMP v1 is authenticated at the handshake (a refusal is HTTP 401); WAMP v2 at HELLO, from the
handshake's credentials or the ``ticket`` of AUTHENTICATE (a refusal is ABORT
``wamp.error.not_authorized``). A user whose token carries ``exp`` is closed with
``CLOSE_TOKEN_EXPIRED`` when it passes; the browser client then asks the page for a new token.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, Protocol

from autobahn.websocket.types import ConnectionDeny, ConnectionRequest

from gos_web_socket.app.auth.credentials import Credentials
from gos_web_socket.app.auth.jwt import JwtProvider
from gos_web_socket.app.auth.providers import AuthenticationProvider
from gos_web_socket.app.auth.user import ANONYMOUS, User
from gos_web_socket.app.close_codes import CLOSE_TOKEN_EXPIRED
from gos_web_socket.app.exceptions import AuthenticationFailed, ConfigurationError
from gos_web_socket.settings.auth import AuthenticationSettings

logger = logging.getLogger(__name__)

MISSING = "missing"
"""The refusal reason of a connection without a credential when anonymous is not allowed."""
EXPIRY_TIMER = "auth.expiry"


def builtin_providers(settings: AuthenticationSettings) -> list[AuthenticationProvider]:
    """The enabled built-in providers (the JWT one), before any custom one."""
    jwt_settings = settings.providers.jwt
    if not jwt_settings.enabled:
        return []
    return [JwtProvider(jwt_settings, settings.max_token_size)]


class ExpiryTimers(Protocol):
    """The named timers of a connection, where a token's expiry waits."""

    def add(self, name: str, interval: float, callback: Callable[[], None]) -> None: ...

    def cancel(self, name: str) -> None: ...


class SessionKind(Protocol):
    """Whether a protocol authenticates in its own session (v2 HELLO) or at the handshake."""

    authenticates_in_session: ClassVar[bool]


class Peer(Protocol):
    """What the authenticator reads and sets on a connection: typed here, so that auth imports
    nothing of the server (``WampConnection`` is one)."""

    credentials: Credentials
    user: User

    @property
    def session_id(self) -> str: ...

    @property
    def remote_address(self) -> str: ...

    @property
    def session(self) -> SessionKind: ...

    @property
    def timers(self) -> ExpiryTimers: ...

    def close(self, code: int = 1000, reason: str = "") -> None: ...


class Authenticator:
    """Decides who each connection is: the first provider that supports its credentials."""

    def __init__(
        self, providers: Iterable[AuthenticationProvider], allow_anonymous: bool = True
    ) -> None:
        self.providers: Sequence[AuthenticationProvider] = list(providers)
        self.allow_anonymous = allow_anonymous
        self.accepted: Counter[str] = Counter()
        """Users admitted, by provider (``anonymous`` included)."""
        self.refused: Counter[str] = Counter()
        """Refusals, by reason (``missing``, ``expired``, ``bad_signature``, ...)."""
        self.expired = 0
        """Live connections closed because their token expired."""

    @classmethod
    def from_settings(
        cls, settings: AuthenticationSettings, custom: Iterable[AuthenticationProvider] = ()
    ) -> Authenticator:
        """Raises ConfigurationError when anonymous is refused and no provider could admit
        anyone: such a server would refuse every connection."""
        found = [*builtin_providers(settings), *custom]
        if not found and not settings.allow_anonymous:
            raise ConfigurationError(
                [
                    "authentication.allow_anonymous: false with no enabled provider refuses "
                    "every connection (allowed: configure authentication.providers.jwt, add a "
                    "provider to authentication_providers, or allow_anonymous: true)"
                ]
            )
        return cls(found, settings.allow_anonymous)

    @property
    def takes_tickets(self) -> bool:
        """True when some provider reads a WAMP v2 ticket (the JWT one, unless turned off)."""
        probe = Credentials(ticket="?")
        return any(provider.supports(probe) for provider in self.providers)

    def authenticate(self, credentials: Credentials) -> User:
        """The user of ``credentials``; the anonymous one when nothing was presented.

        Raises:
            AuthenticationFailed: a provider refused the credential, or there was none and
                anonymous connections are not allowed (reason ``missing``).
        """
        for provider in self.providers:
            if provider.supports(credentials):
                return provider.authenticate(credentials)
        if not self.allow_anonymous:
            raise AuthenticationFailed(MISSING, "no credential and anonymous is not allowed")
        return ANONYMOUS

    # -- on connections -----------------------------------------------------------------------

    def handshake(self, connection: Peer, request: ConnectionRequest) -> None:
        """Keep the handshake's credentials; a session that does not authenticate in its own
        protocol (WAMP v1) is authenticated now.

        Raises:
            ConnectionDeny: 401, the credential was refused (WAMP v1).
        """
        connection.credentials = Credentials.from_request(request, connection.remote_address)
        if connection.session.authenticates_in_session:
            return
        if self.admit(connection) is None:
            raise ConnectionDeny(401, "not authorized")  # type: ignore[no-untyped-call]

    def admit(self, connection: Peer, ticket: str | None = None) -> User | None:
        """Set ``connection.user`` from its credentials (plus a v2 ticket); None: refused."""
        credentials = connection.credentials
        if ticket is not None:
            credentials = credentials.with_ticket(ticket)
        try:
            user = self.authenticate(credentials)
        except AuthenticationFailed as exc:
            self.refused[exc.reason] += 1
            logger.warning(
                f"authentication refused ({exc.reason}): connection %s from %s",
                connection.session_id,
                connection.remote_address,
                extra={"conn_id": connection.session_id, "reason": exc.reason},
            )
            return None
        connection.user = user
        self.accepted[user.provider] += 1
        if user.expires_at is not None:
            self._watch_expiry(connection, user.expires_at)
        return user

    def _watch_expiry(self, connection: Peer, expires_at: float) -> None:
        leeway = 0.0
        for provider in self.providers:
            if isinstance(provider, JwtProvider) and provider.name == connection.user.provider:
                leeway = provider.settings.leeway
        delay = max(expires_at + leeway - time.time(), 0.001)

        def expire() -> None:
            connection.timers.cancel(EXPIRY_TIMER)
            self.expired += 1
            logger.info(
                "connection %s closed: token expired",
                connection.session_id,
                extra={"conn_id": connection.session_id},
            )
            connection.close(CLOSE_TOKEN_EXPIRED, "token expired")

        connection.timers.add(EXPIRY_TIMER, delay, expire)

    def stats(self) -> dict[str, Any]:
        return {"accepted": dict(self.accepted), "refused": dict(self.refused)}
