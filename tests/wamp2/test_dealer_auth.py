"""Who may register and call client procedures: the routes' ``register`` and ``call`` rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from autobahn.wamp.exception import ApplicationError

from gos_web_socket.app.auth import RouteRules
from gos_web_socket.app.exceptions import ConfigurationError, RouteDefinitionError
from gos_web_socket.app.router import Router, load_routes_from_mapping
from gos_web_socket.app.server import WampServer
from gos_web_socket.app.testing import V2Client
from tests.auth.conftest import (
    Keys,
    jwt_node,
    keys as keys,  # noqa: F401  (the session's key pair fixture)
)
from tests.support.server import running_server, url_of

ROUTES: dict[str, Any] = {
    # no register rule: authenticated users register, anyone calls
    "jobs": {"pattern": "com.jobs.{name}", "callback": "none"},
    "workers": {
        "pattern": "com.workers.{name}",
        "options": {"auth": {"register": "roles:ROLE_WORKER", "call": "authenticated"}},
    },
}


@pytest.fixture
async def server(keys: Keys) -> AsyncIterator[WampServer]:
    authentication = {"allow_anonymous": True, "providers": {"jwt": jwt_node(keys)}}
    async with running_server(routes=ROUTES, authentication=authentication) as running:
        yield running


async def refused(client: V2Client, uri: str) -> str:
    with pytest.raises(ApplicationError) as raised:
        await client.session.register(lambda: "x", uri)
    return str(raised.value.error)


async def test_register_defaults_to_authenticated(server: WampServer, keys: Keys) -> None:
    """Anonymous clients cannot register on a route without a rule; a user can, anyone calls."""
    anonymous = await V2Client.join(url_of(server))
    user = await V2Client.join(url_of(server), ticket=keys.hs256("42"), authid="42")
    assert await refused(anonymous, "com.jobs.run") == "wamp.error.not_authorized"
    await user.session.register(lambda: "ran", "com.jobs.run")
    assert await anonymous.session.call("com.jobs.run") == "ran"
    assert server.broker.rules.refused == {"register": 1}
    await anonymous.leave()
    await user.leave()


async def test_register_and_call_rules(server: WampServer, keys: Keys) -> None:
    """roles:ROLE_WORKER may register; a user without the role may not; anonymous may not call."""
    worker = await V2Client.join(url_of(server), ticket=keys.hs256("7", roles=["ROLE_WORKER"]))
    user = await V2Client.join(url_of(server), ticket=keys.hs256("42"), authid="42")
    anonymous = await V2Client.join(url_of(server))
    assert await refused(user, "com.workers.resize") == "wamp.error.not_authorized"
    await worker.session.register(lambda size: size // 2, "com.workers.resize")
    assert await user.session.call("com.workers.resize", 10) == 5
    with pytest.raises(ApplicationError) as raised:
        await anonymous.session.call("com.workers.resize", 10)
    assert raised.value.error == "wamp.error.not_authorized"
    for client in (worker, user, anonymous):
        await client.leave()


def test_a_route_of_client_procedures_needs_no_callback() -> None:
    """options.auth.register lets a route leave callback out; without it callback stays required."""
    routes = load_routes_from_mapping(ROUTES)
    assert routes["workers"].callback == ""
    with pytest.raises(RouteDefinitionError, match='define a "callback".*options.auth.register'):
        load_routes_from_mapping(
            {"r": {"pattern": "a.{b}", "options": {"auth": {"call": "nobody"}}}}
        )


def test_a_bad_register_rule_is_one_line() -> None:
    """An unknown register rule stops start-up with the route, the value and what is allowed."""
    routes = {"r": {"pattern": "a.{b}", "options": {"auth": {"register": "everyone"}}}}
    with pytest.raises(ConfigurationError) as caught:
        RouteRules.from_router(Router(load_routes_from_mapping(routes)))
    assert caught.value.problems == [
        "route r options.auth.register: 'everyone' is not allowed (allowed: anyone, "
        "authenticated, nobody, owner, owner:<parameter>, roles:<A,B>)"
    ]
