"""autobahn-python's own asyncio WAMP v2 client against the server: session, pub/sub, RPC."""

from __future__ import annotations

import pytest
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions

from gos_web_socket.app.demo import AcmeRpc, AcmeTopic
from gos_web_socket.app.events import CLIENT_CONNECTED, CLIENT_DISCONNECTED, EventDispatcher
from gos_web_socket.app.server import WampServer
from gos_web_socket.app.testing import JoinFailed, V2Client
from tests.support.server import running_server, url_of
from tests.support.waiting import eventually
from tests.wamp2.conftest import Joiner

CHANNEL = "acme/channel/lobby"
ACK = PublishOptions(acknowledge=True)


@pytest.mark.parametrize("serializer", ["json", "msgpack"])
async def test_join_realm(demo_server: WampServer, join: Joiner, serializer: str) -> None:
    """WELCOME carries the realm, a 53-bit session id equal to the v1 string id, and both roles."""
    client = await join(serializer=serializer)
    assert client.details.realm == "realm1"
    assert 1 <= client.session_id <= 2**53
    assert client.session._transport.websocket_protocol_in_use == f"wamp.2.{serializer}"
    assert set(client.session._router_roles) == {"broker", "dealer"}
    await eventually(lambda: demo_server.connections == 1, what="one session")
    (connection,) = demo_server.live_connections
    assert connection.session_id == str(client.session_id)


async def test_unknown_realm_is_aborted(demo_server: WampServer, join: Joiner) -> None:
    """HELLO for another realm gets ABORT no_such_realm; the server keeps serving."""
    with pytest.raises(JoinFailed) as failed:
        await V2Client.join(url_of(demo_server), realm="elsewhere")
    assert failed.value.details.reason == "wamp.error.no_such_realm"
    client = await join()
    assert await client.session.call("acme/rpc/sum", 1, 2) == 3


async def test_realm_comes_from_settings() -> None:
    """``server.realm`` names the realm clients must join."""
    async with running_server(topics=[AcmeTopic()], rpcs=[AcmeRpc()], realm="acme") as server:
        client = await V2Client.join(url_of(server), realm="acme")
        assert client.details.realm == "acme"
        await client.leave()


@pytest.mark.parametrize("serializer", ["json", "msgpack"])
async def test_subscribe_and_acknowledged_publish(join: Joiner, serializer: str) -> None:
    """An acknowledged publish gets PUBLISHED and reaches the others, not the publisher."""
    subscriber = await join(serializer=serializer)
    publisher = await join(serializer=serializer)
    await subscriber.subscribe(CHANNEL)
    await publisher.subscribe(CHANNEL)
    publication = await publisher.session.publish(CHANNEL, {"msg": "hi"}, options=ACK)
    assert 1 <= publication.id <= 2**53
    assert await subscriber.next_event(CHANNEL) == {"msg": "hi"}
    publisher.session.publish(CHANNEL, "own", options=PublishOptions(exclude_me=False))
    assert await publisher.next_event(CHANNEL) == "own"  # not {"msg": "hi"}: exclude_me default
    assert await subscriber.next_event(CHANNEL) == "own"


async def test_publish_exclude_and_eligible_by_session_id(join: Joiner) -> None:
    """exclude and eligible take the integer session ids the other clients got in WELCOME."""
    publisher, first, second = await join(), await join(), await join()
    for client in (first, second):
        await client.subscribe(CHANNEL)
    exclude_first = PublishOptions(acknowledge=True, exclude=[first.session_id])
    await publisher.session.publish(CHANNEL, "not first", options=exclude_first)
    only_first = PublishOptions(acknowledge=True, eligible=[first.session_id])
    await publisher.session.publish(CHANNEL, "only first", options=only_first)
    assert await first.next_event(CHANNEL) == "only first"
    assert await second.next_event(CHANNEL) == "not first"
    await publisher.session.publish(CHANNEL, "both", options=ACK)
    assert await first.next_event(CHANNEL) == "both"
    assert await second.next_event(CHANNEL) == "both"


async def test_publish_arguments_map_to_one_event(join: Joiner) -> None:
    """Several positional arguments publish as one list; with keyword arguments it is refused."""
    subscriber, publisher = await join(), await join()
    await subscriber.subscribe(CHANNEL)
    await publisher.session.publish(CHANNEL, 1, 2, options=ACK)
    assert await subscriber.next_event(CHANNEL) == [1, 2]
    with pytest.raises(ApplicationError) as refused:
        await publisher.session.publish(CHANNEL, 1, room="lobby", options=ACK)
    assert refused.value.error == "wamp.error.invalid_argument"


async def test_publish_to_unrouted_topic(join: Joiner) -> None:
    """An acknowledged publish to a channel no route matches gets ERROR invalid_uri."""
    client = await join()
    with pytest.raises(ApplicationError) as refused:
        await client.session.publish("nowhere/at/all", 1, options=ACK)
    assert refused.value.error == "wamp.error.invalid_uri"
    assert await client.session.call("acme/rpc/sum", 1, 1) == 2


async def test_subscribe_to_unrouted_topic(join: Joiner) -> None:
    """SUBSCRIBE to a channel no route matches gets ERROR invalid_uri; the session stays."""
    client = await join()
    with pytest.raises(ApplicationError) as refused:
        await client.subscribe("nowhere/at/all")
    assert refused.value.error == "wamp.error.invalid_uri"
    assert client.session.is_attached()


async def test_unsubscribe_stops_events(demo_server: WampServer, join: Joiner) -> None:
    """After UNSUBSCRIBED the client has left the topic; a second subscription id is the same."""
    first, second = await join(), await join()
    subscription = await first.subscribe(CHANNEL)
    again = await second.subscribe(CHANNEL)
    assert subscription.id == again.id  # one subscription id per topic
    await subscription.unsubscribe()
    assert len(demo_server.topics[CHANNEL]) == 1
    await first.session.publish(CHANNEL, "after", options=ACK)
    assert await second.next_event(CHANNEL) == "after"
    assert first.pending(CHANNEL) == 0


@pytest.mark.parametrize("serializer", ["json", "msgpack"])
async def test_call_sum(join: Joiner, serializer: str) -> None:
    """CALL acme/rpc/sum returns the sum; a v1 list result is the RESULT's arguments."""
    client = await join(serializer=serializer)
    assert await client.session.call("acme/rpc/sum", 2, 3) == 5
    assert await client.session.call("acme/rpc/sum", [4, 5]) == 9
    assert await client.session.call("acme/rpc/sum", a=1, b=2) == 3
    assert await client.session.call("acme/rpc/echo", {"k": "v"}) == {"k": "v"}


async def test_call_errors_map_to_error_uris(join: Joiner) -> None:
    """RpcError(400) is invalid_argument, an unknown method or route no_such_procedure."""
    client = await join()
    with pytest.raises(ApplicationError) as bad:
        await client.session.call("acme/rpc/sum", "x")
    assert bad.value.error == "wamp.error.invalid_argument"
    assert bad.value.args == ("sum takes numbers only",)
    assert bad.value.kwargs["code"] == 400
    with pytest.raises(ApplicationError) as no_method:
        await client.session.call("acme/rpc/nothing")
    assert no_method.value.error == "wamp.error.no_such_procedure"
    with pytest.raises(ApplicationError) as no_route:
        await client.session.call("not/routed")
    assert no_route.value.error == "wamp.error.no_such_procedure"
    assert await client.session.call("acme/rpc/sum", 1) == 1


async def test_register_is_refused(join: Joiner) -> None:
    """Clients cannot add procedures: REGISTER gets an ERROR, the session stays."""
    client = await join()
    with pytest.raises(ApplicationError) as refused:
        await client.session.register(lambda: 1, "acme/rpc/mine")
    assert refused.value.error == "wamp.error.not_authorized"
    assert await client.session.call("acme/rpc/sum", 2) == 2


async def test_connected_and_disconnected_events_fire_once() -> None:
    """client_connected fires at WELCOME and client_disconnected when the session ends."""
    seen: list[str] = []
    dispatcher = EventDispatcher()
    dispatcher.add_listener(CLIENT_CONNECTED, lambda event: seen.append("connected"))
    dispatcher.add_listener(CLIENT_DISCONNECTED, lambda event: seen.append("disconnected"))
    async with running_server(topics=[AcmeTopic()], dispatcher=dispatcher) as server:
        client = await V2Client.join(url_of(server))
        await eventually(lambda: seen == ["connected"], what="client_connected")
        await client.leave()
        await eventually(lambda: seen == ["connected", "disconnected"], what="disconnected")
        assert server.connections == 0


async def test_server_stop_says_goodbye() -> None:
    """Stopping the server ends v2 sessions with GOODBYE wamp.close.system_shutdown."""
    async with running_server(topics=[AcmeTopic()]) as server:
        client = await V2Client.join(url_of(server))
        await server.stop()
        details = await client.left
        await client.leave()  # the transport is gone too
    assert details.reason == "wamp.close.system_shutdown"
