"""The WAMP meta API: session, subscription and registration procedures and events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import RegisterOptions, SubscribeOptions

from gos_web_socket.app.demo import AcmeRpc, AcmeTopic
from gos_web_socket.app.server import WampServer
from gos_web_socket.app.testing import RawPeer, V2Client
from tests.auth.conftest import (
    Keys,
    jwt_node,
    keys as keys,  # noqa: F401  (the session's key pair fixture)
)
from tests.support.server import running_server, url_of
from tests.support.waiting import eventually
from tests.wamp2.conftest import Events, listen, next_of

ROUTES: dict[str, Any] = {
    "acme_topic": {"pattern": "acme/channel/{room}", "callback": "acme.topic"},
    "private": {
        "pattern": "acme/private/{room}",
        "callback": "acme.topic",
        "options": {"auth": {"subscribe": "authenticated"}},
    },
    "procedures": {
        "pattern": "com.acme.{name}",
        "options": {"auth": {"register": "anyone", "call": "anyone"}},
    },
    "secret_procedures": {
        "pattern": "com.secret.{name}",
        "options": {"auth": {"register": "anyone", "call": "authenticated"}},
    },
}


@pytest.fixture
async def server(keys: Keys) -> AsyncIterator[WampServer]:
    authentication = {"allow_anonymous": True, "providers": {"jwt": jwt_node(keys)}}
    async with running_server(
        topics=[AcmeTopic()], rpcs=[AcmeRpc()], routes=ROUTES, authentication=authentication
    ) as running:
        yield running


async def args_of(queue: Events) -> tuple[Any, ...]:
    """The arguments of the next meta event."""
    return (await next_of(queue))[0]


async def refused(client: V2Client, uri: str, *args: Any) -> str:
    with pytest.raises(ApplicationError) as raised:
        await client.session.call(uri, *args)
    return str(raised.value.error)


@pytest.mark.parametrize("serializer", ["json", "msgpack"])
async def test_session_meta(server: WampServer, keys: Keys, serializer: str) -> None:
    """An authenticated client counts, lists and gets sessions and sees on_join/on_leave;
    an anonymous one is refused the session API by default."""
    url = url_of(server)
    admin = await V2Client.join(url, serializer=serializer, ticket=keys.hs256("7"), authid="7")
    joins, leaves = (
        await listen(admin, "wamp.session.on_join"),
        await listen(admin, "wamp.session.on_leave"),
    )
    guest = await V2Client.join(url)
    (joined,) = await args_of(joins)
    assert joined["session"] == guest.session_id
    assert joined["authrole"] == "anonymous" and joined["authid"] == str(guest.session_id)
    sessions = await admin.session.call("wamp.session.list")
    assert set(sessions) == {admin.session_id, guest.session_id}
    assert await admin.session.call("wamp.session.count") == 2
    assert await admin.session.call("wamp.session.count", ["anonymous"]) == 1
    assert await admin.session.call("wamp.session.get", guest.session_id) == joined
    assert await refused(admin, "wamp.session.get", 12345) == "wamp.error.no_such_session"
    assert await refused(guest, "wamp.session.count") == "wamp.error.not_authorized"
    with pytest.raises(ApplicationError) as raised:
        await guest.session.subscribe(print, "wamp.session.on_join")
    assert raised.value.error == "wamp.error.not_authorized"
    await guest.leave()
    assert await args_of(leaves) == (guest.session_id, str(guest.session_id), "anonymous")
    assert await admin.session.call("wamp.session.list") == [admin.session_id]
    await admin.leave()


async def test_subscription_meta(server: WampServer, keys: Keys) -> None:
    """Subscription procedures and events show a client only the channels it may subscribe
    to, and the pattern subscriptions it holds."""
    url = url_of(server)
    guest = await V2Client.join(url)
    user = await V2Client.join(url, ticket=keys.hs256("42"), authid="42")
    creates, subscribes = (
        await listen(guest, "wamp.subscription.on_create"),
        await listen(guest, "wamp.subscription.on_subscribe"),
    )
    deletes = await listen(guest, "wamp.subscription.on_delete")
    await user.session.subscribe(print, "acme/private/vault")  # guest must not see it
    lobby = await user.session.subscribe(print, "acme/channel/lobby")
    session, details = await args_of(creates)
    assert session == user.session_id
    assert (details["id"], details["uri"], details["match"]) == (
        lobby.id,
        "acme/channel/lobby",
        "exact",
    )
    assert await args_of(subscribes) == (user.session_id, lobby.id)
    listed = await guest.session.call("wamp.subscription.list")
    assert listed == {"exact": [lobby.id], "prefix": [], "wildcard": []}
    mine = await guest.session.subscribe(print, "acme/channel/", SubscribeOptions(match="prefix"))
    assert (await args_of(creates))[1]["match"] == "prefix"
    assert await guest.session.call("wamp.subscription.lookup", "acme/channel/lobby") == lobby.id
    assert await guest.session.call("wamp.subscription.lookup", "acme/private/vault") is None
    assert (
        await guest.session.call("wamp.subscription.lookup", "acme/channel/", {"match": "prefix"})
        == mine.id
    )
    assert await guest.session.call("wamp.subscription.match", "acme/channel/lobby") == [
        lobby.id,
        mine.id,
    ]
    got = await guest.session.call("wamp.subscription.get", lobby.id)
    assert got["uri"] == "acme/channel/lobby" and got["created"]
    assert await guest.session.call("wamp.subscription.list_subscribers", lobby.id) == [
        user.session_id
    ]
    assert await guest.session.call("wamp.subscription.count_subscribers", lobby.id) == 1
    private = await user.session.call("wamp.subscription.lookup", "acme/private/vault")
    assert isinstance(private, int)
    error = await refused(guest, "wamp.subscription.get", private)
    assert error == "wamp.error.no_such_subscription"
    await lobby.unsubscribe()
    assert await args_of(deletes) == (user.session_id, lobby.id)
    for client in (guest, user):
        await client.leave()


async def test_registration_meta(server: WampServer, keys: Keys) -> None:
    """Registration procedures and events; a procedure the client may not call is hidden;
    clients cannot register meta URIs."""
    url = url_of(server)
    watcher, callee = await V2Client.join(url), await V2Client.join(url)
    creates = await listen(watcher, "wamp.registration.on_create")
    deletes = await listen(watcher, "wamp.registration.on_delete")
    await callee.session.register(lambda: 0, "com.secret.hidden")
    shared = RegisterOptions(invoke="roundrobin")
    first = await callee.session.register(lambda: 1, "com.acme.add", shared)
    session, details = await args_of(creates)
    assert (session, details["uri"], details["invoke"]) == (
        callee.session_id,
        "com.acme.add",
        "roundrobin",
    )
    await watcher.session.register(lambda: 2, "com.acme.add", shared)
    prefix = await callee.session.register(
        lambda **kw: 3, "com.acme.img", RegisterOptions(match="prefix")
    )
    assert await watcher.session.call("wamp.registration.list") == {
        "exact": [first.id],
        "prefix": [prefix.id],
        "wildcard": [],
    }
    assert await watcher.session.call("wamp.registration.lookup", "com.acme.add") == first.id
    assert await watcher.session.call("wamp.registration.match", "com.acme.img_resize") == prefix.id
    assert await watcher.session.call("wamp.registration.lookup", "com.secret.hidden") is None
    got = await watcher.session.call("wamp.registration.get", first.id)
    assert got == {
        "id": first.id,
        "created": details["created"],
        "uri": "com.acme.add",
        "match": "exact",
        "invoke": "roundrobin",
    }
    assert datetime.fromisoformat(got["created"])
    assert await watcher.session.call("wamp.registration.list_callees", first.id) == [
        callee.session_id,
        watcher.session_id,
    ]
    assert await watcher.session.call("wamp.registration.count_callees", first.id) == 2
    with pytest.raises(ApplicationError) as raised:
        await callee.session.register(lambda: 0, "wamp.session.count")
    assert raised.value.error == "wamp.error.invalid_uri"
    await prefix.unregister()
    assert await args_of(deletes) == (callee.session_id, prefix.id)
    for client in (watcher, callee):
        await client.leave()


async def test_welcome_announces_what_is_implemented(server: WampServer) -> None:
    """WELCOME's roles list exactly the broker and dealer features implemented."""
    peer = await RawPeer.connect(url_of(server))
    welcome = await peer.hello()
    roles = welcome[2]["roles"]
    assert set(roles["broker"]["features"]) == {
        "publisher_exclusion",
        "subscriber_blackwhite_listing",
        "pattern_based_subscription",
        "publisher_identification",
        "session_meta_api",
        "subscription_meta_api",
    }
    assert set(roles["dealer"]["features"]) == {
        "progressive_call_results",
        "call_canceling",
        "call_timeout",
        "shared_registration",
        "caller_identification",
        "pattern_based_registration",
        "session_meta_api",
        "registration_meta_api",
    }
    peer.close()


async def test_shared_registration_keeps_one_id(server: WampServer) -> None:
    """A shared registration has one stable meta id (its first callee's), kept after that
    callee leaves; get and list_callees accept any callee's registration id."""
    url = url_of(server)
    a, b, watcher = await V2Client.join(url), await V2Client.join(url), await V2Client.join(url)
    shared = RegisterOptions(invoke="roundrobin")
    ra = await a.session.register(lambda: 1, "com.acme.add", shared)
    rb = await b.session.register(lambda: 2, "com.acme.add", shared)
    got = await watcher.session.call("wamp.registration.get", rb.id)
    assert got["id"] == ra.id and datetime.fromisoformat(got["created"])
    assert await watcher.session.call("wamp.registration.list_callees", rb.id) == [
        a.session_id,
        b.session_id,
    ]
    await ra.unregister()
    listed = await watcher.session.call("wamp.registration.list")
    assert listed["exact"] == [ra.id]
    assert await watcher.session.call("wamp.registration.lookup", "com.acme.add") == ra.id
    assert await watcher.session.call("wamp.registration.get", ra.id) == got
    assert await watcher.session.call("wamp.registration.list_callees", rb.id) == [b.session_id]
    for client in (a, b, watcher):
        await client.leave()


async def test_meta_visibility_filters_count_no_refusal(server: WampServer) -> None:
    """Hiding a procedure or event from a meta API reader is a filter, not a refused verb:
    the authz_refused counts stay as they were."""
    url = url_of(server)
    anonymous, callee = await V2Client.join(url), await V2Client.join(url)
    creates = await listen(anonymous, "wamp.registration.on_create")
    await callee.session.register(lambda: 0, "com.secret.hidden")
    shown = await callee.session.register(lambda: 1, "com.acme.shown")
    session, details = await args_of(creates)
    assert (session, details["id"]) == (callee.session_id, shown.id)
    listed = await anonymous.session.call("wamp.registration.list")
    assert listed["exact"] == [shown.id]
    assert await anonymous.session.call("wamp.registration.lookup", "com.secret.hidden") is None
    assert server.broker.rules.refused == {}
    for client in (anonymous, callee):
        await client.leave()


async def test_on_leave_follows_its_own_rule_and_meta_topics_take_no_publish() -> None:
    """wamp.session.on_leave events follow the on_leave route's rule, not on_join's; a client
    PUBLISH to a meta topic gets ERROR wamp.error.invalid_uri."""

    def route(uri: str, rule: str) -> dict[str, Any]:
        return {"pattern": uri, "callback": "acme.topic", "options": {"auth": {"subscribe": rule}}}

    routes = {
        "join": route("wamp.session.on_join", "nobody"),
        "leave": route("wamp.session.on_leave", "anyone"),
    }
    async with running_server(topics=[AcmeTopic()], routes=routes) as server:
        watcher = await V2Client.join(url_of(server))
        leaves = await listen(watcher, "wamp.session.on_leave")
        passer = await V2Client.join(url_of(server))
        gone = passer.session_id
        await passer.leave()
        assert (await args_of(leaves))[0] == gone
        peer = await RawPeer.connect(url_of(server))
        await peer.hello()
        for number, uri in enumerate(("wamp.session.on_join", "wamp.session.on_leave"), 1):
            peer.send([16, number, {"acknowledge": True}, uri, ["forged"]])
            assert (await peer.receive())[:5] == [8, 16, number, {}, "wamp.error.invalid_uri"]
        peer.close()
        await watcher.leave()


async def test_a_peer_that_vanishes_leaves_no_pattern_meta_or_registration(
    server: WampServer,
) -> None:
    """A peer whose TCP connection drops without GOODBYE or close: its pattern
    subscription, meta subscription, registration and meta session are all gone."""
    peer = await RawPeer.connect(url_of(server))
    peer.send([1, "realm1", {"roles": {"subscriber": {}, "callee": {}}}])
    session_id = str((await peer.receive())[1])
    peer.send([32, 1, {"match": "prefix"}, "acme/channel/"])
    peer.send([32, 2, {}, "wamp.registration.on_create"])
    peer.send([64, 3, {}, "com.acme.vanishing"])
    answers = [(await peer.receive())[0] for _ in range(4)]  # with its own on_create EVENT
    assert sorted(answers) == [33, 33, 36, 65]
    broker = server.broker
    assert broker.patterns.held(session_id) == 1 and session_id in broker.meta.sessions
    peer.drop()

    def cleaned() -> bool:
        return (
            not broker.patterns.active
            and broker.patterns.held(session_id) == 0
            and not broker.meta.topics
            and session_id not in broker.meta.sessions
            and len(broker.dealer.registrations) == 0
        )

    await eventually(cleaned, what="the vanished peer's state")
