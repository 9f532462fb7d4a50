"""Fixtures for the identity tests: real keys, tokens signed by PyJWT, servers that verify them."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gos_web_socket.app.demo import AcmeRpc, AcmeTopic
from gos_web_socket.app.server import WampServer
from tests.support.raw_ws import php_upgrade_request
from tests.support.server import running_server

AUDIENCE = "gos"
ISSUER = "acme"


@dataclass(frozen=True)
class Keys:
    secret: str
    rsa_private: bytes
    rsa_public: str
    ec_private: bytes
    ec_public: str

    def hs256(self, sub: Any = "42", **claims: Any) -> str:
        """A valid HS256 token for user ``sub`` (aud, iss and a one-hour exp by default)."""
        return jwt.encode(_claims(sub, claims), self.secret, algorithm="HS256")

    def rs256(self, sub: Any = "42", **claims: Any) -> str:
        return jwt.encode(_claims(sub, claims), self.rsa_private, algorithm="RS256")

    def es256(self, sub: Any = "42", kid: str | None = None, **claims: Any) -> str:
        headers = {"kid": kid} if kid else None
        return jwt.encode(_claims(sub, claims), self.ec_private, "ES256", headers=headers)

    def hs256_with_public_key(self, sub: str = "42") -> str:
        """Key confusion: HS256 signed with the RSA *public* key as the HMAC secret (PyJWT
        refuses to make one, so it is built by hand)."""
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = _b64(json.dumps(_claims(sub, {})).encode())
        signing_input = f"{header}.{payload}".encode()
        mac = hmac.new(self.rsa_public.encode(), signing_input, hashlib.sha256).digest()
        return f"{header}.{payload}.{_b64(mac)}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(sub: Any, claims: dict[str, Any]) -> dict[str, Any]:
    base: dict[str, Any] = {"aud": AUDIENCE, "iss": ISSUER, "exp": int(time.time()) + 3600}
    if sub is not None:
        base["sub"] = sub
    return {**base, **claims}


@pytest.fixture(scope="session")
def keys() -> Keys:
    """A random HMAC secret, an RSA-2048 and a P-256 key pair, made once per test session."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())

    def private(key: Any) -> bytes:
        return key.private_bytes(  # type: ignore[no-any-return]
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def public(key: Any) -> str:
        return (
            key.public_key()
            .public_bytes(  # type: ignore[no-any-return]
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    secret = secrets.token_urlsafe(64)
    return Keys(secret, private(rsa_key), public(rsa_key), private(ec_key), public(ec_key))


def jwt_node(keys: Keys, **overrides: Any) -> dict[str, Any]:
    """``authentication.providers.jwt``: HS256 with the secret, RS256 with the public key."""
    node = {
        "enabled": True,
        "algorithms": ["HS256", "RS256"],
        "secret": keys.secret,
        "public_key": keys.rsa_public,
        "audience": AUDIENCE,
        "issuer": ISSUER,
        "sources": {"query_parameter": "token", "cookie": "gos_token", "header": True},
    }
    return {**node, **overrides}


Serve = Callable[..., AbstractAsyncContextManager[WampServer]]


@pytest.fixture
def serve(keys: Keys) -> Serve:
    """``async with serve(allow_anonymous=False, jwt={...}) as server``: the demo on free ports."""

    def start(allow_anonymous: bool = False, **jwt_overrides: Any) -> Any:
        authentication = {
            "allow_anonymous": allow_anonymous,
            "providers": {"jwt": jwt_node(keys, **jwt_overrides)},
        }
        return running_server(topics=[AcmeTopic()], rpcs=[AcmeRpc()], authentication=authentication)

    return start


@pytest.fixture
async def strict(serve: Serve) -> AsyncIterator[WampServer]:
    """The demo server with ``allow_anonymous: false`` and the HS256 + RS256 provider."""
    async with serve() as server:
        yield server


async def handshake_status(
    server: WampServer, path: str = "/", headers: dict[str, str] | None = None
) -> int:
    """The HTTP status the server answers a WAMP v1 upgrade with (101: accepted)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        request = php_upgrade_request("127.0.0.1", server.port, path=path)
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        writer.write(request[:-2] + extra.encode() + b"\r\n")
        status_line = await asyncio.wait_for(reader.readline(), 5)
        return int(status_line.split()[1])
    finally:
        writer.close()
