"""The connection repository, custom providers (a signed Flask-style cookie), JWKS, settings
rules and the identity metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from dependency_injector import providers
from jwt.algorithms import ECAlgorithm

from examples.signed_cookie_provider import SignedCookieProvider
from gos_web_socket.app.auth import ConnectionRepository, Credentials, JwtProvider
from gos_web_socket.app.demo import AcmeRpc, AcmeTopic
from gos_web_socket.app.exceptions import AuthenticationFailed, ConfigurationError
from gos_web_socket.app.metrics import ServerMetrics
from gos_web_socket.app.server import WampServer
from gos_web_socket.app.testing import V2Client, WampTestClient
from gos_web_socket.settings.auth import JwtProviderSettings
from gos_web_socket.settings.models import Settings, load_settings
from tests.auth.conftest import Keys, Serve, handshake_status, jwt_node
from tests.support.server import SERVER, make_container, service, url_of

LOBBY = "acme/channel/lobby"


async def test_repository_queries(serve: Serve, keys: Keys) -> None:
    """find_all / by username / with roles return the right connections of two users and
    anonymous ones; get_user and find_token_for_connection give each connection's user."""
    async with serve(allow_anonymous=True) as server:
        a1 = await WampTestClient.connect(url_of(server) + f"?token={keys.hs256('42')}")
        a2 = await V2Client.join(url_of(server), ticket=keys.hs256("42"), authid="42")
        b = await WampTestClient.connect(
            url_of(server) + f"?token={keys.hs256('43', roles=['ROLE_ADMIN'])}"
        )
        anon = await WampTestClient.connect(url_of(server))
        for client in (a1, b, anon):
            client.subscribe(LOBBY)
        await a2.subscribe(LOBBY)
        await a1.call("acme/rpc/echo", [])  # every SUBSCRIBE before it is done
        await b.call("acme/rpc/echo", [])
        await anon.call("acme/rpc/echo", [])
        repository = ConnectionRepository(server)
        topic = server.topics[LOBBY]

        def ids(found: list[Any]) -> list[str | None]:
            return sorted((c.user.id or "anon") for c in found)

        assert ids(repository.find_all(topic)) == ["42", "42", "43"]
        assert ids(repository.find_all(LOBBY, anonymous=True)) == ["42", "42", "43", "anon"]
        assert len(repository.find_all_by_username(topic, "42")) == 2
        assert ids(repository.find_all_by_username(None, "43")) == ["43"]
        assert ids(repository.find_all_with_roles(topic, ["ROLE_ADMIN"])) == ["43"]
        assert repository.find_all("acme/channel/empty") == []
        anonymous = next(c for c in repository.find_all(topic, True) if c.user.is_anonymous)
        assert repository.get_user(anonymous) is None
        (admin,) = repository.find_all_with_roles(None, ["ROLE_ADMIN"])
        user = repository.get_user(admin)
        assert user is not None and user.id == "43"
        assert repository.find_token_for_connection(admin) is admin.user
        await a2.leave()
        for client in (a1, b, anon):
            await client.close()


def test_repository_is_a_container_service(keys: Keys) -> None:
    """gos_web_socket.connection_repository reads the container's server."""
    container = make_container()
    repository = service(container, "gos_web_socket.connection_repository")
    assert isinstance(repository, ConnectionRepository)
    assert repository.server is service(container, SERVER)


async def test_custom_provider_from_signed_cookie() -> None:
    """A custom provider added to the container's collection authenticates a Flask-style
    itsdangerous session cookie; a tampered cookie is refused with its reason."""
    secret = "flask-secret-key-of-the-app-0123456789"
    container = make_container(
        topics=[AcmeTopic()], rpcs=[AcmeRpc()], authentication={"allow_anonymous": False}
    )
    provider = SignedCookieProvider(secret)
    container.gos_web_socket.authentication_providers.add_args(providers.Object(provider))
    cookie = provider.serializer.dumps({"user_id": "42", "roles": ["ROLE_USER"]})
    async with service(container, "gos_web_socket.runtime"):
        server: WampServer = service(container, SERVER)
        client = await WampTestClient.connect(
            url_of(server), headers={"Cookie": f"session={cookie}"}
        )
        (connection,) = server.live_connections
        assert connection.user.id == "42" and connection.user.provider == "signed_cookie"
        await client.close()
        tampered = cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB")
        assert await handshake_status(server, headers={"Cookie": f"session={tampered}"}) == 401
        assert server.authenticator.refused == {"bad_signature": 1}


def test_es256_from_jwks_file(keys: Keys, tmp_path: Path) -> None:
    """ES256 verified with the JWKS entry the kid names; an unknown kid is refused."""
    public_key = serialization.load_pem_public_key(keys.ec_public.encode())
    entry = json.loads(ECAlgorithm.to_jwk(public_key))  # type: ignore[arg-type]
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**entry, "kid": "k1", "alg": "ES256", "use": "sig"}]}))
    settings = JwtProviderSettings(
        enabled=True, algorithms=["ES256"], jwks_file=jwks, audience="gos", issuer="acme"
    )
    provider = JwtProvider(settings)
    user = provider.authenticate(Credentials(query={"token": keys.es256("9", kid="k1")}))
    assert user.id == "9"
    with pytest.raises(AuthenticationFailed) as error:
        provider.authenticate(Credentials(query={"token": keys.es256("9", kid="k2")}))
    assert error.value.reason == "unknown_key"


@pytest.mark.parametrize(
    ("jwt_settings", "problem"),
    [
        ({"algorithms": ["none"]}, "'none' is never allowed"),
        ({"algorithms": ["HS256", "None"]}, "'none' is never allowed"),
        ({"algorithms": ["XS1"]}, "unknown algorithm 'XS1'"),
        ({"secret": None, "public_key": None}, "secret is required for HS256"),
        ({"algorithms": ["RS256"], "secret": None, "public_key": None}, "public_key, public_key_"),
        ({"secret": "short"}, "at least 32 bytes"),
    ],
)
def test_dangerous_settings_are_refused(
    keys: Keys, jwt_settings: dict[str, Any], problem: str
) -> None:
    """An unsafe JWT configuration is a settings error that names the key."""
    node = jwt_node(keys, **jwt_settings)
    with pytest.raises(Exception) as error:
        Settings(authentication={"providers": {"jwt": node}})
    assert problem in str(error.value)


def test_pem_secret_is_refused(keys: Keys) -> None:
    """A public key given as the HMAC secret (key confusion by configuration) is refused."""
    with pytest.raises(Exception, match="a public key is not an HMAC secret"):
        Settings(authentication={"providers": {"jwt": jwt_node(keys, secret=keys.rsa_public)}})


def test_unreadable_key_file_is_a_configuration_error(tmp_path: Path) -> None:
    """A public_key_file that cannot be read stops start-up with one line naming the node."""
    settings = JwtProviderSettings(
        enabled=True, algorithms=["RS256"], public_key_file=tmp_path / "missing.pem"
    )
    with pytest.raises(ConfigurationError, match="authentication.providers.jwt: cannot load"):
        JwtProvider(settings)


async def test_identity_metrics(strict: WampServer, keys: Keys) -> None:
    """Refusals by reason, accepted users by provider and rule refusals appear in /metrics."""
    metrics = ServerMetrics(strict)
    try:
        assert await handshake_status(strict) == 401
        assert await handshake_status(strict, f"/?token={keys.hs256(exp=1)}") == 401
        client = await WampTestClient.connect(url_of(strict) + f"?token={keys.hs256('43')}")
        client.subscribe("acme/user/42")
        await client.next_topic_error("acme/user/42")
        text = metrics.render().decode()
        assert 'gos_websocket_auth_refused_total{reason="missing"} 1.0' in text
        assert 'gos_websocket_auth_refused_total{reason="expired"} 1.0' in text
        assert 'gos_websocket_auth_accepted_total{provider="jwt"} 1.0' in text
        assert 'gos_websocket_authz_refused_total{verb="subscribe"} 1.0' in text
        await client.close()
    finally:
        metrics.detach()


def test_config_file_paths_and_unknown_keys(keys: Keys, tmp_path: Path) -> None:
    """public_key_file is read beside the config file; a misspelt key under the jwt node is one
    line listing the node's keys."""
    (tmp_path / "key.pem").write_text(keys.rsa_public)
    config = tmp_path / "gos.yaml"
    config.write_text(
        "gos_web_socket:\n  authentication:\n    providers:\n      jwt:\n"
        "        enabled: true\n        algorithms: [RS256]\n        public_key_file: key.pem\n"
        "        audience: gos\n"
    )
    settings = load_settings(config)
    assert settings.authentication.providers.jwt.public_key_file == tmp_path / "key.pem"
    provider = JwtProvider(settings.authentication.providers.jwt)
    assert provider.authenticate(Credentials(query={"token": keys.rs256("5")})).id == "5"
    config.write_text("gos_web_socket:\n  authentication:\n    providers:\n      jwt: {secrt: x}\n")
    with pytest.raises(ConfigurationError) as error:
        load_settings(config)
    (line,) = error.value.problems
    assert line.startswith("unknown key authentication.providers.jwt.secrt (allowed: enabled,")
