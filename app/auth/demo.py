"""Demo tokens for ``make run`` only (``server.http.demo_tokens: true``): never in production.

At start a random secret is made; the demo HTTP server answers ``GET /demo/token?user=42`` with a
token for *any* user it is asked for (that is the point of a demo, and why it is off by
default), and ``GET /demo/push?user=42&msg=hi`` pushes to ``acme_user`` through an enabled
pusher (not the WAMP one), so the page can show two users side by side, each receiving only
their own private pushes.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from typing import Any

import jwt
from pydantic import SecretStr

from gos_web_socket.app.auth.jwt import JwtProvider
from gos_web_socket.app.auth.providers import AuthenticationProvider
from gos_web_socket.app.web import HttpService, Request, Response
from gos_web_socket.settings.auth import JwtProviderSettings, TokenSources

logger = logging.getLogger(__name__)

LIFETIME = 300
"""Seconds a demo token lives: long enough to play, short enough to see a refresh."""
_USER = re.compile(r"[A-Za-z0-9_-]{1,32}")


class DemoTokens:
    """The demo's secret, its provider, and the two HTTP routes (only when ``enabled``)."""

    def __init__(self, enabled: bool, pushers: Mapping[str, Any] | None = None) -> None:
        self.enabled = enabled
        self.pushers = pushers or {}
        self._secret = secrets.token_urlsafe(48)
        self.provider = JwtProvider(
            JwtProviderSettings(
                enabled=True,
                algorithms=["HS256"],
                secret=SecretStr(self._secret),
                sources=TokenSources(query_parameter="token", header=False, ticket=True),
            )
        )

    def providers(self, custom: Iterable[AuthenticationProvider]) -> list[AuthenticationProvider]:
        """The custom providers, then the demo one when demo tokens are on."""
        return [*custom, *([self.provider] if self.enabled else [])]

    def issue(self, user_id: str, lifetime: int = LIFETIME) -> str:
        claims = {"sub": user_id, "exp": int(time.time()) + lifetime, "info": {"demo": True}}
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def install(self, http: HttpService) -> None:
        """Register ``/demo/mode`` (always: the page asks it whether to show the private
        channels) and, with demo tokens on, ``/demo/token`` and ``/demo/push``."""
        http.register("/demo/mode", lambda request: Response.json({"demo_tokens": self.enabled}))
        if not self.enabled:
            return
        logger.warning("demo tokens on: /demo/token signs a token for any user (demo only)")
        http.register("/demo/token", self._token)
        http.register("/demo/push", self._push)

    def _user(self, request: Request) -> str | None:
        user = (request.query.get("user") or [""])[0]
        return user if _USER.fullmatch(user) else None

    def _token(self, request: Request) -> Response:
        user = self._user(request)
        if user is None:
            return Response.json({"error": "user must match [A-Za-z0-9_-]{1,32}"}, 400)
        return Response.json({"user": user, "token": self.issue(user), "expires_in": LIFETIME})

    async def _push(self, request: Request) -> Response:
        user = self._user(request)
        message = (request.query.get("msg") or ["hello"])[0][:200]
        if user is None:
            return Response.json({"error": "user must match [A-Za-z0-9_-]{1,32}"}, 400)
        if not self.pushers:
            return Response.json({"error": "no pusher enabled"}, 400)
        # The WAMP pusher publishes as a client (refused by publish: nobody without a pusher
        # token); the others reach the topic's on_push.
        name, pusher = min(self.pushers.items(), key=lambda item: item[0] == "wamp")
        await pusher.push({"msg": message, "to": user}, "acme_user", {"user_id": user})
        return Response.json({"pushed": user, "pusher": name})


def launched_listener(demo: DemoTokens, http: HttpService) -> tuple[str, Any, int]:
    """Install the demo routes when the server launches (an ``event_listeners`` entry)."""
    from gos_web_socket.app.events import SERVER_LAUNCHED

    async def install(event: Any) -> None:
        demo.install(http)

    return SERVER_LAUNCHED, install, 0
