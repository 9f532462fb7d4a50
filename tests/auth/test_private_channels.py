"""Per-route authorization and pushes to one user: acme/user/{user_id}, v1 and v2, every pusher."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from autobahn.wamp.exception import ApplicationError

from gos_web_socket.app.auth import RouteRules
from gos_web_socket.app.demo import AcmeRpc, AcmeTopic
from gos_web_socket.app.events import EventDispatcher
from gos_web_socket.app.exceptions import ConfigurationError
from gos_web_socket.app.router import Router, load_routes, load_routes_from_mapping
from gos_web_socket.app.server import WampServer
from gos_web_socket.app.testing import V2Client, WampTestClient
from gos_web_socket.app.transports.amqp.handler import AmqpServerPushHandler
from gos_web_socket.app.transports.amqp.pusher import AmqpPusher
from gos_web_socket.app.transports.wamp import WampPusher
from gos_web_socket.app.transports.zmq.handler import ZmqServerPushHandler
from gos_web_socket.app.transports.zmq.pusher import ZmqPusher
from gos_web_socket.settings.models import DEFAULT_ROUTING, WampSettings, ZmqSettings
from tests.auth.conftest import Keys, jwt_node
from tests.support.rabbitmq import RabbitMQNode
from tests.support.server import running_server, url_of
from tests.support.waiting import eventually

MINE = "acme/user/42"
USER_42 = {"user_id": "42"}


def authentication(keys: Keys) -> dict[str, Any]:
    return {"allow_anonymous": True, "providers": {"jwt": jwt_node(keys)}}


@pytest.fixture
def router() -> Router:
    return Router(load_routes(DEFAULT_ROUTING))


@pytest.fixture
def zmq_settings(unused_port: int) -> ZmqSettings:
    return ZmqSettings(port=unused_port, send_timeout=2.0)


@pytest.fixture
async def server(
    keys: Keys, zmq_settings: ZmqSettings, router: Router
) -> AsyncIterator[WampServer]:
    """The demo with anonymous allowed, the JWT provider and the ZeroMQ push handler."""
    dispatcher = EventDispatcher()
    handler = ZmqServerPushHandler(settings=zmq_settings, router=router, dispatcher=dispatcher)
    async with running_server(
        topics=[AcmeTopic()],
        rpcs=[AcmeRpc()],
        push_handlers={"zmq": handler},
        dispatcher=dispatcher,
        authentication=authentication(keys),
    ) as server:
        yield server


async def v1(server: WampServer, token: str | None = None) -> WampTestClient:
    return await WampTestClient.connect(url_of(server) + (f"?token={token}" if token else ""))


async def test_owner_subscribes_others_are_refused(server: WampServer, keys: Keys) -> None:
    """User 42 joins acme/user/42; user 43 and anonymous get CALLERROR 403 and are not joined."""
    mine = await v1(server, keys.hs256("42"))
    other = await v1(server, keys.hs256("43"))
    anonymous = await v1(server)
    for client in (mine, other, anonymous):
        client.subscribe(MINE)
    for client in (other, anonymous):
        error = await client.next_topic_error(MINE)
        assert error.details == {"code": 403} and "not authorized" in error.desc
    topic = server.topics[MINE]
    assert len(topic) == 1
    assert server.broker.rules.refused == {"subscribe": 2}
    for client in (mine, other, anonymous):
        await client.close()


async def test_v2_refusal_is_not_authorized(server: WampServer, keys: Keys) -> None:
    """autobahn-python as user 43 subscribing to acme/user/42 gets wamp.error.not_authorized."""
    client = await V2Client.join(url_of(server), ticket=keys.hs256("43"), authid="43")
    with pytest.raises(ApplicationError) as error:
        await client.subscribe(MINE)
    assert error.value.error == "wamp.error.not_authorized"
    await client.leave()


async def test_nobody_may_publish(server: WampServer, keys: Keys) -> None:
    """PUBLISH on acme/user/42 is refused to its owner (v1 and v2) and nothing is broadcast."""
    mine = await v1(server, keys.hs256("42"))
    mine.subscribe(MINE)
    v2 = await V2Client.join(url_of(server), ticket=keys.hs256("42"), authid="42")
    await v2.subscribe(MINE)
    mine.publish(MINE, {"forged": True})
    assert (await mine.next_topic_error(MINE)).details == {"code": 403}
    with pytest.raises(ApplicationError) as error:
        await v2.session.publish(MINE, {"forged": True}, options=_acknowledged())
    assert error.value.error == "wamp.error.not_authorized"
    assert mine.unread_events() == [] and v2.pending(MINE) == 0
    assert server.broker.rules.refused == {"publish": 2}
    await v2.leave()
    await mine.close()


def _acknowledged() -> Any:
    from autobahn.wamp.types import PublishOptions

    return PublishOptions(acknowledge=True, exclude_me=False)


async def test_zmq_push_reaches_every_connection_of_user_42_only(
    server: WampServer, keys: Keys, zmq_settings: ZmqSettings, router: Router
) -> None:
    """push(data, "acme_user", {"user_id": "42"}) through ZeroMQ reaches user 42's v1 and v2
    connections, and neither user 43 nor an anonymous client (on their own channels)."""
    tab1 = await v1(server, keys.hs256("42"))
    tab1.subscribe(MINE)
    tab2 = await V2Client.join(url_of(server), ticket=keys.rs256("42"), authid="42")
    await tab2.subscribe(MINE)
    other = await v1(server, keys.hs256("43"))
    other.subscribe("acme/user/43")
    anonymous = await v1(server)
    anonymous.subscribe("acme/channel/lobby")
    async with ZmqPusher(settings=zmq_settings, router=router) as pusher:
        await pusher.push({"msg": "for 42"}, "acme_user", USER_42)
        assert await tab1.next_event(MINE) == {"msg": "for 42"}
        assert await tab2.next_event(MINE) == {"msg": "for 42"}
        await pusher.push({"msg": "for 43"}, "acme_user", {"user_id": "43"})
        assert await other.next_event("acme/user/43") == {"msg": "for 43"}
    assert tab1.unread_events() == [] and tab2.pending(MINE) == 0
    assert other.unread_events() == [] and anonymous.unread_events() == []
    await tab2.leave()
    for client in (tab1, other, anonymous):
        await client.close()


async def test_amqp_push_reaches_user_42_only(
    rabbitmq: RabbitMQNode, keys: Keys, router: Router
) -> None:
    """The same private push through RabbitMQ reaches user 42 and not user 43."""
    settings = rabbitmq.amqp_settings(push_timeout=10)
    handler = AmqpServerPushHandler(settings, router, EventDispatcher())
    async with running_server(
        topics=[AcmeTopic()], push_handlers={"amqp": handler}, authentication=authentication(keys)
    ) as server:
        mine = await v1(server, keys.hs256("42"))
        mine.subscribe(MINE)
        other = await v1(server, keys.hs256("43"))
        other.subscribe("acme/user/43")
        async with AmqpPusher(settings, router) as pusher:
            await pusher.push({"msg": "amqp"}, "acme_user", USER_42)
            assert await mine.next_event(MINE, timeout=10) == {"msg": "amqp"}
        assert other.unread_events() == []
        await mine.close()
        await other.close()


async def test_routes_without_rules_behave_as_before(server: WampServer) -> None:
    """An anonymous client still subscribes, publishes and calls on the rule-less demo routes."""
    client = await v1(server)
    client.subscribe("acme/channel/lobby")
    client.publish("acme/channel/lobby", {"hi": 1}, False)
    assert await client.next_event("acme/channel/lobby") == {"hi": 1}
    assert await client.call("acme/rpc/sum", 2, 3) == [5]
    await client.close()


def rules_of(auth: Any, pattern: str = "acme/user/{user_id}") -> RouteRules:
    routes = {"r": {"pattern": pattern, "callback": "acme.topic", "options": {"auth": auth}}}
    return RouteRules.from_router(Router(load_routes_from_mapping(routes)))


@pytest.mark.parametrize(
    ("auth", "problem"),
    [
        ({"subscribe": "everyone"}, "route r options.auth.subscribe: 'everyone' is not allowed"),
        ({"join": "anyone"}, "route r options.auth: unknown key join"),
        ({"subscribe": "owner:uid"}, "owner parameter 'uid' is not in pattern"),
        ({"call": "roles:"}, "route r options.auth.call: 'roles:' is not allowed"),
        ("nobody", "route r options.auth: must be a mapping"),
    ],
)
def test_bad_rules_are_start_up_errors(auth: Any, problem: str) -> None:
    """A rule that cannot be read stops start-up with a line naming route, verb and value."""
    with pytest.raises(ConfigurationError) as error:
        rules_of(auth)
    assert problem in str(error.value)


def test_role_rule() -> None:
    """roles:A,B admits a user holding either role and nobody else."""
    from gos_web_socket.app.auth import User

    rule = rules_of({"call": "roles:ROLE_ADMIN, ROLE_OPS"}).rule("call", "r")
    assert rule.allows(User("1", frozenset({"ROLE_OPS"})), {})
    assert not rule.allows(User("1", frozenset({"ROLE_USER"})), {})
    assert not rule.allows(User(), {})


async def test_wamp_pusher_with_pusher_token_reaches_user_42(
    server: WampServer, keys: Keys, router: Router
) -> None:
    """The WAMP pusher publishes as a client: with a ROLE_GOS_PUSHER token its push reaches
    user 42 (as GOS, the data arrives JSON-encoded); without a token it is refused."""
    mine = await v1(server, keys.hs256("42"))
    mine.subscribe(MINE)
    await mine.call("acme/rpc/echo", [])  # the SUBSCRIBE is done
    token = keys.hs256("backend", roles=["ROLE_GOS_PUSHER"])
    settings = WampSettings(port=server.port, token=token)
    async with WampPusher(settings, router) as pusher:
        await pusher.push({"msg": "wamp"}, "acme_user", USER_42)
        assert json.loads(await mine.next_event(MINE)) == {"msg": "wamp"}
    async with WampPusher(WampSettings(port=server.port), router) as anonymous_pusher:
        await anonymous_pusher.push({"msg": "forged"}, "acme_user", USER_42)
        await eventually(lambda: server.broker.rules.refused["publish"] == 1)
    assert mine.unread_events() == []
    await mine.close()
