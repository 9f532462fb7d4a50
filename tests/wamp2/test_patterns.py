"""Pattern-based subscriptions (``match: prefix | wildcard``) and the shared matcher."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from autobahn.wamp.types import PublishOptions, SubscribeOptions

from gos_web_socket.app.demo import AcmeRpc, AcmeTopic
from gos_web_socket.app.events import EventDispatcher
from gos_web_socket.app.message import Message
from gos_web_socket.app.router import Router, load_routes_from_mapping
from gos_web_socket.app.server import WampServer
from gos_web_socket.app.server.wamp2.matching import best, matches
from gos_web_socket.app.testing import RawPeer, V2Client, WampTestClient
from gos_web_socket.app.transports.memory import InMemoryServerPushHandler
from tests.support.server import running_server, url_of
from tests.support.waiting import eventually
from tests.wamp2.conftest import Events, next_of, subscribe_events

ROUTES: dict[str, Any] = {
    "acme_topic": {"pattern": "acme/channel/{room}", "callback": "acme.topic"},
    "acme_rpc": {"pattern": "acme/rpc/{method}", "callback": "acme.rpc"},
    "private": {
        "pattern": "acme/private/{room}",
        "callback": "acme.topic",
        "options": {"auth": {"subscribe": "authenticated"}},
    },
    "dotted": {"pattern": "com.acme.{room}.news", "callback": "acme.topic"},
}


@pytest.fixture
async def server() -> AsyncIterator[WampServer]:
    """The demo topic on slash and dot routes, one of them for authenticated users only,
    with the in-memory push handler."""
    router = Router(load_routes_from_mapping(ROUTES))
    dispatcher = EventDispatcher()
    memory = InMemoryServerPushHandler(router=router, dispatcher=dispatcher)
    async with running_server(
        topics=[AcmeTopic()],
        rpcs=[AcmeRpc()],
        routes=ROUTES,
        push_handlers={"memory": memory},
        dispatcher=dispatcher,
    ) as running:
        yield running


@pytest.mark.parametrize("serializer", ["json", "msgpack"])
async def test_prefix_subscription_gets_every_source(server: WampServer, serializer: str) -> None:
    """v2 publish, v1 publish and a server push reach a prefix subscriber, with details.topic."""
    watcher = await V2Client.join(url_of(server), serializer=serializer)
    events, subscription = await subscribe_events(watcher, "acme/channel/", "prefix")
    publisher = await V2Client.join(url_of(server))
    await publisher.session.publish(
        "acme/channel/lobby", {"n": 1}, options=PublishOptions(acknowledge=True)
    )
    args, details = await next_of(events)
    assert args == ({"n": 1},)
    assert details.topic == "acme/channel/lobby"
    assert details.subscription.id == subscription.id
    v1 = await WampTestClient.connect(url_of(server))
    v1.send([7, "acme/channel/kitchen", {"n": 2}])
    args, details = await next_of(events)
    assert (args, details.topic) == (({"n": 2},), "acme/channel/kitchen")
    memory = server.push_handlers["memory"]
    assert isinstance(memory, InMemoryServerPushHandler)
    await memory.feed(Message("acme/channel/garden", {"n": 3}).encode())
    args, details = await next_of(events)
    assert (args, details.topic) == (({"n": 3},), "acme/channel/garden")
    await v1.close()
    await watcher.leave()
    await publisher.leave()


async def test_wildcard_with_slashes_and_dots(server: WampServer) -> None:
    """Empty components are wildcards in ``/`` URIs and ``.`` URIs; the others must be equal."""
    watcher = await V2Client.join(url_of(server))
    slashes, _ = await subscribe_events(watcher, "acme//lobby", "wildcard")
    dots, _ = await subscribe_events(watcher, "com.acme..news", "wildcard")
    publisher = await V2Client.join(url_of(server))
    ack = PublishOptions(acknowledge=True)
    await publisher.session.publish("acme/channel/kitchen", "no", options=ack)
    await publisher.session.publish("acme/channel/lobby", "slash", options=ack)
    await publisher.session.publish("com.acme.sports.news", "dot", options=ack)
    assert (await next_of(slashes))[0] == ("slash",)
    args, details = await next_of(dots)
    assert (args, details.topic) == (("dot",), "com.acme.sports.news")
    assert slashes.empty()
    await watcher.leave()
    await publisher.leave()


async def test_one_id_per_pattern_and_both_subscriptions_deliver(server: WampServer) -> None:
    """Two sessions on one (pattern, match) share its id; an exact and a pattern subscription
    of one session each get the event, with the same publication id."""
    first, second = await V2Client.join(url_of(server)), await V2Client.join(url_of(server))
    events, one = await subscribe_events(first, "acme/channel/", "prefix")
    _, two = await subscribe_events(second, "acme/channel/", "prefix")
    _, wild = await subscribe_events(second, "acme/channel/", "wildcard")
    assert one.id == two.id != wild.id
    exact: Events = asyncio.Queue()
    await first.session.subscribe(
        lambda *a, details: exact.put_nowait((a, details)),
        "acme/channel/lobby",
        SubscribeOptions(details_arg="details"),
    )
    publisher = await V2Client.join(url_of(server))
    await publisher.session.publish(
        "acme/channel/lobby", 1, options=PublishOptions(acknowledge=True)
    )
    (_, by_pattern), (_, by_exact) = await next_of(events), await next_of(exact)
    assert by_pattern.publication == by_exact.publication
    assert by_exact.topic is None or by_exact.topic == "acme/channel/lobby"
    await one.unsubscribe()
    await publisher.session.publish(
        "acme/channel/lobby", 2, options=PublishOptions(acknowledge=True)
    )
    assert (await next_of(exact))[0] == (2,)
    assert events.empty()
    assert server.broker.patterns.get(two.id) is not None  # second still holds it
    await second.leave()
    await eventually(lambda: server.broker.patterns.get(two.id) is None, what="pattern gone")
    for client in (first, publisher):
        await client.leave()


async def test_pattern_subscription_follows_the_route_rules(server: WampServer) -> None:
    """An anonymous prefix subscriber never gets events of a channel whose route refuses it
    SUBSCRIBE; exclude and eligible apply as to exact subscribers."""
    watcher = await V2Client.join(url_of(server))
    events, _ = await subscribe_events(watcher, "acme/", "prefix")
    publisher = await V2Client.join(url_of(server))
    ack = PublishOptions(acknowledge=True)
    await publisher.session.publish("acme/private/vault", "secret", options=ack)
    await publisher.session.publish(
        "acme/channel/lobby",
        "excluded",
        options=PublishOptions(acknowledge=True, exclude=[watcher.session_id]),
    )
    await publisher.session.publish(
        "acme/channel/lobby",
        "other",
        options=PublishOptions(acknowledge=True, eligible=[publisher.session_id]),
    )
    await publisher.session.publish("acme/channel/lobby", "public", options=ack)
    args, details = await next_of(events)
    assert (args, details.topic) == (("public",), "acme/channel/lobby")
    assert events.empty()
    await watcher.leave()
    await publisher.leave()


async def test_bad_match_is_refused(server: WampServer) -> None:
    """SUBSCRIBE with an unknown ``match`` gets invalid_argument; the session stays."""
    peer = await RawPeer.connect(url_of(server))
    await peer.hello()
    peer.send([32, 1, {"match": "regex"}, "acme/"])
    error = await peer.receive()
    assert error[:5] == [8, 32, 1, {}, "wamp.error.invalid_argument"]
    peer.send([32, 2, {"match": "prefix"}, "acme/"])
    assert (await peer.receive())[:2] == [33, 2]
    peer.close()


def test_matcher() -> None:
    """prefix is a string prefix; wildcard components split on ``.`` and ``/``; the best
    registration pattern is the longest prefix, then the wildcard with literals first."""
    assert matches("prefix", "com.a.emergency", "com.a.emergency-low")
    assert matches("wildcard", "com.myapp..userevent", "com.myapp.u1.userevent")
    assert not matches("wildcard", "com.myapp..userevent", "com.myapp.u1.x.userevent")
    assert not matches("wildcard", "com.myapp..userevent", "com.myapp..userevent")
    assert matches("wildcard", "acme//lobby", "acme/channel/lobby")
    assert not matches("wildcard", "acme//lobby", "acme.channel.lobby")
    assert not matches("exact", "a", "ab")
    keys = [("prefix", "com."), ("prefix", "com.acme."), ("wildcard", "com..x")]
    assert best(keys, "com.acme.x") == ("prefix", "com.acme.")
    assert best([("wildcard", "com..x"), ("wildcard", "com.acme.")], "com.acme.x") == (
        "wildcard",
        "com.acme.",
    )
    assert best(keys, "org.x") is None


async def test_pattern_subscriptions_count_against_max_subscriptions() -> None:
    """Pattern subscriptions count with exact ones: an exact SUBSCRIBE past
    max_subscriptions closes the client with 1008."""
    async with running_server(
        topics=[AcmeTopic()], routes=ROUTES, limits={"max_subscriptions": 2}
    ) as server:
        peer = await RawPeer.connect(url_of(server))
        await peer.hello()
        peer.send([32, 1, {"match": "prefix"}, "acme/channel/"])
        peer.send([32, 2, {"match": "wildcard"}, "acme.channel."])
        assert [(await peer.receive())[:2] for _ in range(2)] == [[33, 1], [33, 2]]
        peer.send([32, 3, {}, "acme/channel/a"])
        assert await peer.wait_closed() == 1008
        assert dict(server.stats.closed) == {"max_subscriptions": 1}


async def test_a_payload_a_pattern_subscriber_cannot_carry_reaches_nobody(
    server: WampServer,
) -> None:
    """msgpack bytes cannot go to a JSON pattern subscriber: the broadcast fails before the
    msgpack exact subscriber got it (every frame is built before the first write)."""
    exact = await V2Client.join(url_of(server), serializer="msgpack")
    watcher = await V2Client.join(url_of(server))
    exact_events, _ = await subscribe_events(exact, "acme/channel/lobby", "exact")
    pattern_events, _ = await subscribe_events(watcher, "acme/channel/", "prefix")
    topic = server.broker.manager.topics["acme/channel/lobby"]
    with pytest.raises((TypeError, ValueError)):
        topic.broadcast({"blob": b"\x00\x01"})
    topic.broadcast("after")
    assert (await next_of(exact_events))[0] == ("after",)
    assert (await next_of(pattern_events))[0] == ("after",)
    for client in (exact, watcher):
        await client.leave()
