"""Authentication with real tokens signed by PyJWT, real WAMP v1 and autobahn-python clients."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from gos_web_socket.app.auth import CLOSE_TOKEN_EXPIRED
from gos_web_socket.app.server import WampServer
from gos_web_socket.app.testing import JoinFailed, V2Client, WampTestClient
from tests.auth.conftest import Keys, Serve, handshake_status
from tests.support.server import url_of
from tests.support.waiting import eventually

BAD_TOKENS: dict[str, Callable[[Keys], str]] = {
    "bad_signature": lambda k: jwt.encode(
        {"sub": "42", "aud": "gos", "iss": "acme"}, "x" * 40, algorithm="HS256"
    ),
    "alg_none": lambda k: jwt.encode({"sub": "42", "aud": "gos", "iss": "acme"}, None, "none"),
    "alg_not_allowed": lambda k: jwt.encode({"sub": "42"}, k.secret, algorithm="HS512"),
    "expired": lambda k: k.hs256(exp=int(time.time()) - 60),
    "not_yet_valid": lambda k: k.hs256(nbf=int(time.time()) + 600),
    "bad_audience": lambda k: k.hs256(aud="other"),
    "bad_issuer": lambda k: k.hs256(iss="evil"),
    "malformed": lambda k: "not.a.jwt",
    "oversized": lambda k: k.hs256(pad="x" * 9000),
    "no_user_id": lambda k: k.hs256(sub=None),
}
"""Each bad token, by the reason it must be refused with."""


def refused(server: WampServer) -> dict[str, int]:
    return dict(server.authenticator.refused)


async def test_v1_without_token_gets_401(strict: WampServer) -> None:
    """allow_anonymous false: a WAMP v1 handshake without a token is answered HTTP 401."""
    assert await handshake_status(strict) == 401
    assert refused(strict) == {"missing": 1}


@pytest.mark.parametrize("reason", sorted(BAD_TOKENS))
async def test_v1_bad_token_is_refused_for_its_reason(
    strict: WampServer, keys: Keys, reason: str
) -> None:
    """Each bad token in the query string is refused with 401 and counted under its reason."""
    token = BAD_TOKENS[reason](keys)
    assert await handshake_status(strict, f"/?token={token}") == 401
    assert refused(strict) == {reason: 1}


async def test_key_confusion_is_refused(strict: WampServer, keys: Keys) -> None:
    """HS256 signed with the RSA public key as secret fails: HS* is checked with the secret."""
    token = keys.hs256_with_public_key()
    assert await handshake_status(strict, f"/?token={token}") == 401
    assert refused(strict) == {"bad_signature": 1}


async def test_key_confusion_without_hmac_is_alg_not_allowed(serve: Serve, keys: Keys) -> None:
    """With only RS256 allowed, the same forged HS256 token is refused before any key is used."""
    async with serve(algorithms=["RS256"], secret=None) as server:
        token = keys.hs256_with_public_key()
        assert await handshake_status(server, f"/?token={token}") == 401
        assert refused(server) == {"alg_not_allowed": 1}


@pytest.mark.parametrize("where", ["query", "cookie", "header"])
@pytest.mark.parametrize("algorithm", ["HS256", "RS256"])
async def test_v1_valid_token_is_accepted(
    strict: WampServer, keys: Keys, where: str, algorithm: str
) -> None:
    """A valid HS256 or RS256 token in the query, a cookie or a Bearer header: WELCOME, and
    the connection's user is the token's sub with its roles."""
    token = (keys.hs256 if algorithm == "HS256" else keys.rs256)("42", roles=["ROLE_USER"])
    url, headers = url_of(strict), {}
    if where == "query":
        url += f"?token={token}"
    elif where == "cookie":
        headers["Cookie"] = f"theme=dark; gos_token={token}"
    else:
        headers["Authorization"] = f"Bearer {token}"
    client = await WampTestClient.connect(url, headers=headers)
    try:
        (connection,) = strict.live_connections
        assert connection.user.id == "42" and connection.user.roles == {"ROLE_USER"}
        assert connection.user.provider == "jwt"
    finally:
        await client.close()


@pytest.mark.parametrize("algorithm", ["HS256", "RS256"])
async def test_v2_ticket_auth_with_autobahn(strict: WampServer, keys: Keys, algorithm: str) -> None:
    """autobahn-python's ticket auth: CHALLENGE, AUTHENTICATE with the JWT, WELCOME as user 42."""
    token = (keys.hs256 if algorithm == "HS256" else keys.rs256)("42", roles=["ROLE_ADMIN"])
    client = await V2Client.join(url_of(strict), ticket=token, authid="42")
    try:
        assert client.details.authid == "42"
        assert client.details.authmethod == "ticket"
        assert client.details.authrole == "ROLE_ADMIN"
    finally:
        await client.leave()


@pytest.mark.parametrize("reason", ["bad_signature", "expired", "alg_none"])
async def test_v2_bad_ticket_gets_abort(strict: WampServer, keys: Keys, reason: str) -> None:
    """A bad ticket is answered ABORT wamp.error.not_authorized and counted by reason."""
    with pytest.raises(JoinFailed) as failed:
        await V2Client.join(url_of(strict), ticket=BAD_TOKENS[reason](keys), authid="42")
    assert failed.value.details.reason == "wamp.error.not_authorized"
    assert refused(strict) == {reason: 1}


async def test_v2_without_credentials_gets_abort(strict: WampServer) -> None:
    """allow_anonymous false: HELLO without a ticket or a token is ABORT not_authorized."""
    with pytest.raises(JoinFailed) as failed:
        await V2Client.join(url_of(strict))
    assert failed.value.details.reason == "wamp.error.not_authorized"
    assert refused(strict) == {"missing": 1}


async def test_v2_token_in_query_without_ticket(strict: WampServer, keys: Keys) -> None:
    """A v2 client that offers no ticket is authenticated from the handshake's query token."""
    client = await V2Client.join(url_of(strict) + f"?token={keys.hs256('7')}")
    try:
        assert client.details.authid == "7" and client.details.authmethod == "jwt"
    finally:
        await client.leave()


async def test_anonymous_allowed_but_bad_token_refused(serve: Serve, keys: Keys) -> None:
    """allow_anonymous true: no token is anonymous (no id); a bad token is still refused."""
    async with serve(allow_anonymous=True) as server:
        client = await WampTestClient.connect(url_of(server))
        (connection,) = server.live_connections
        assert connection.user.id is None and connection.user.is_anonymous
        await client.close()
        token = BAD_TOKENS["bad_signature"](keys)
        assert await handshake_status(server, f"/?token={token}") == 401
        v2 = await V2Client.join(url_of(server))
        assert v2.details.authrole == "anonymous"
        await v2.leave()


async def test_refusal_logs_reason_never_token(
    strict: WampServer, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    """One warning per refusal names the reason; the token appears nowhere in the log."""
    token = keys.hs256(exp=int(time.time()) - 60)
    with caplog.at_level(logging.WARNING, logger="gos_web_socket.app.auth.authenticator"):
        assert await handshake_status(strict, f"/?token={token}") == 401
    lines = [
        r.getMessage() for r in caplog.records if r.name == "gos_web_socket.app.auth.authenticator"
    ]
    assert len(lines) == 1 and "(expired)" in lines[0]
    assert token not in caplog.text and token.split(".")[2] not in caplog.text


async def test_expiry_closes_v1_and_v2(strict: WampServer, keys: Keys) -> None:
    """When exp passes, a live v1 connection is closed with 4001 and a v2 session is ended."""
    exp = int(time.time()) + 2
    v1 = await WampTestClient.connect(url_of(strict) + f"?token={keys.hs256(exp=exp)}")
    v2 = await V2Client.join(url_of(strict), ticket=keys.rs256(exp=exp), authid="42")
    assert await v1.wait_closed(timeout=5) == CLOSE_TOKEN_EXPIRED
    details: Any = await v2.left
    assert details.message == "token expired"
    await eventually(lambda: strict.connections == 0)
    assert strict.authenticator.expired == 2
