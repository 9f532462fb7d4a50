"""The contract of an authentication provider (GOS 3.x's ``AuthenticationProviderInterface``).

Providers are tried in order; the first whose ``supports()`` is true decides: it returns the
``User`` or raises ``AuthenticationFailed``. Both run on the event loop during the handshake
(v1) or HELLO (v2), so they must not block: verify locally (a signature, a signed cookie), as
Centrifugo does, so that a mass reconnect never calls the application backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from gos_web_socket.app.auth.credentials import Credentials
from gos_web_socket.app.auth.user import User


class AuthenticationProvider(ABC):
    """One way to recognise a user from what the client presented."""

    name: ClassVar[str]
    """Short and stable: it is the ``provider`` of the users it makes and a metric label."""

    @abstractmethod
    def supports(self, credentials: Credentials) -> bool:
        """True when ``credentials`` carry something this provider reads (a token, a cookie)."""

    @abstractmethod
    def authenticate(self, credentials: Credentials) -> User:
        """The user the credentials prove.

        Raises:
            AuthenticationFailed: the credential is bad; its ``reason`` is logged and counted.
        """
