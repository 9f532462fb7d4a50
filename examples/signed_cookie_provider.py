"""A custom authentication provider: the signed session cookie a Flask app sets (itsdangerous).

Run it (after ``pip install itsdangerous``)::

    python -m examples.signed_cookie_provider

It starts the WAMP server with this provider after the built-in ones and prints a cookie for
user 42: a client sending ``Cookie: session=<that>`` is user 42, anyone else is anonymous (or
refused with ``allow_anonymous: false``). In your app, use the Flask ``SECRET_KEY``; the salt
and the serializer below are Flask's own (``SecureCookieSessionInterface``), so Flask's
``session["user_id"] = "42"`` is all the backend has to write.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from typing import Any

from dependency_injector import providers
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from gos_web_socket.app.auth import AuthenticationProvider, Credentials, User
from gos_web_socket.app.exceptions import AuthenticationFailed


class SignedCookieProvider(AuthenticationProvider):
    """Reads cookie ``session``, signed with the app's secret: ``{"user_id", "roles"}``."""

    name = "signed_cookie"

    def __init__(self, secret_key: str, cookie: str = "session", max_age: int = 31 * 86400):
        self.cookie = cookie
        self.max_age = max_age
        self.serializer = URLSafeTimedSerializer(
            secret_key,
            salt="cookie-session",
            signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha1},
        )

    def supports(self, credentials: Credentials) -> bool:
        return self.cookie in credentials.cookies

    def authenticate(self, credentials: Credentials) -> User:
        try:
            data = self.serializer.loads(credentials.cookies[self.cookie], max_age=self.max_age)
        except SignatureExpired:
            raise AuthenticationFailed("expired", "session cookie too old") from None
        except BadSignature:
            raise AuthenticationFailed("bad_signature", "session cookie not signed by us") from None
        if not isinstance(data, Mapping) or not isinstance(data.get("user_id"), str):
            raise AuthenticationFailed("no_user_id", "session without user_id")
        roles = data.get("roles", [])
        return User(
            id=data["user_id"],
            roles=frozenset(r for r in roles if isinstance(r, str)),
            claims=dict(data),
            provider=self.name,
        )


async def main() -> None:
    from gos_web_socket.containers import create_container

    secret = "change-me: the Flask SECRET_KEY"
    container = create_container()
    provider = SignedCookieProvider(secret)
    custom: Any = container.gos_web_socket.authentication_providers
    custom.add_args(providers.Object(provider))
    cookie = provider.serializer.dumps({"user_id": "42", "roles": ["ROLE_USER"]})
    print(f"Cookie: {provider.cookie}={cookie}")
    runtime = container.gos_web_socket.runtime()
    await runtime.run()


if __name__ == "__main__":
    asyncio.run(main())
