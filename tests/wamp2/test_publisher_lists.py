"""Publisher identification (``disclose_me``) and black/white listing by authid and authrole."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from autobahn.wamp.types import PublishOptions

from gos_web_socket.app.demo import AcmeRpc, AcmeTopic
from gos_web_socket.app.router import WampRequest
from gos_web_socket.app.server import Topic, TopicHandler, WampConnection, WampServer
from gos_web_socket.app.testing import RawPeer, V2Client
from tests.auth.conftest import (
    Keys,
    jwt_node,
    keys as keys,  # noqa: F401  (the session's key pair fixture)
)
from tests.support.server import running_server, url_of
from tests.wamp2.conftest import listen, next_of

ROUTES: dict[str, Any] = {
    "acme_topic": {"pattern": "acme/channel/{room}", "callback": "acme.topic"},
    "quiet": {
        "pattern": "acme/quiet/{room}",
        "callback": "acme.topic",
        "options": {"disclose_publisher": False},
    },
}
LOBBY = "acme/channel/lobby"


@pytest.fixture
async def server(keys: Keys) -> AsyncIterator[WampServer]:
    authentication = {"allow_anonymous": True, "providers": {"jwt": jwt_node(keys)}}
    async with running_server(
        topics=[AcmeTopic()], rpcs=[AcmeRpc()], routes=ROUTES, authentication=authentication
    ) as running:
        yield running


@pytest.mark.parametrize("serializer", ["json", "msgpack"])
async def test_disclose_me_names_the_publisher(server: WampServer, serializer: str) -> None:
    """PUBLISH disclose_me gives exact and pattern subscribers publisher, authid and authrole;
    without it they get none; a route with disclose_publisher false refuses it."""
    subscriber = await V2Client.join(url_of(server), serializer=serializer)
    exact, pattern = await listen(subscriber, LOBBY), await listen(subscriber, "acme/", "prefix")
    publisher = await RawPeer.connect(url_of(server))  # autobahn-python has no disclose_me
    welcome = await publisher.hello()
    session = welcome[1]
    publisher.send([16, 1, {"acknowledge": True, "disclose_me": True}, LOBBY, ["hi"]])
    assert (await publisher.receive())[:2] == [17, 1]
    for queue in (exact, pattern):
        args, details = await next_of(queue)
        assert args == ("hi",)
        assert details.publisher == session
        assert details.publisher_authid == welcome[2]["authid"] == str(session)
        assert details.publisher_authrole == "anonymous"
    publisher.send([16, 2, {"acknowledge": True}, LOBBY, ["anon"]])
    assert (await publisher.receive())[:2] == [17, 2]
    for queue in (exact, pattern):
        args, details = await next_of(queue)
        assert args == ("anon",) and details.publisher is None
    publisher.send([16, 3, {"acknowledge": True, "disclose_me": True}, "acme/quiet/room", ["x"]])
    error = await publisher.receive()
    assert error[:5] == [8, 16, 3, {}, "wamp.error.option_disallowed.disclose_me"]
    publisher.close()
    await subscriber.leave()


async def test_lists_by_authid_and_authrole(server: WampServer, keys: Keys) -> None:
    """exclude_authid/authrole and eligible_authid/authrole pick subscribers as the spec says,
    for exact and pattern subscribers, beside the session lists."""
    user = await V2Client.join(url_of(server), ticket=keys.hs256("42"), authid="42")
    anonymous = await V2Client.join(url_of(server))
    watcher = await V2Client.join(url_of(server))  # anonymous, by pattern
    queues = {
        "user": await listen(user, LOBBY),
        "anonymous": await listen(anonymous, LOBBY),
        "watcher": await listen(watcher, "acme/channel/", "prefix"),
    }
    publisher = await V2Client.join(url_of(server))
    role = user.details.authrole
    cases: list[tuple[dict[str, Any], set[str]]] = [
        ({"exclude_authrole": ["anonymous"]}, {"user"}),
        ({"exclude_authid": ["42"]}, {"anonymous", "watcher"}),
        ({"eligible_authid": ["42"]}, {"user"}),
        ({"eligible_authrole": ["anonymous"]}, {"anonymous", "watcher"}),
        ({"eligible_authrole": [role], "exclude_authid": ["42"]}, set()),
        ({"eligible_authrole": ["anonymous"], "exclude": [watcher.session_id]}, {"anonymous"}),
        ({"eligible": [user.session_id, watcher.session_id], "eligible_authid": ["42"]}, {"user"}),
    ]
    for number, (options, expected) in enumerate(cases):
        await publisher.session.publish(
            LOBBY, number, options=PublishOptions(acknowledge=True, **options)
        )
        await publisher.session.publish(LOBBY, "end", options=PublishOptions(acknowledge=True))
        for name, queue in queues.items():
            first = (await next_of(queue))[0]
            if name in expected:
                assert first == (number,), (options, name)
                assert (await next_of(queue))[0] == ("end",)
            else:
                assert first == ("end",), (options, name)
    for client in (user, anonymous, watcher, publisher):
        await client.leave()


class RelayTopic(TopicHandler):
    """Broadcasts a PUBLISH on its own topic, on another channel, and later from a task."""

    name = "relay.topic"

    def __init__(self) -> None:
        self.other: Topic | None = None
        self.later = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    async def on_publish(
        self,
        connection: WampConnection,
        topic: Topic,
        request: WampRequest,
        event: Any,
        exclude: list[str],
        eligible: list[str],
    ) -> None:
        topic.broadcast("own")
        assert self.other is not None
        self.other.broadcast("other")

        async def after() -> None:
            await self.later.wait()
            topic.broadcast("task")

        self.tasks.append(asyncio.create_task(after()))


async def test_disclosure_stays_on_the_published_topic_during_the_hook() -> None:
    """disclose_me names the publisher only on the PUBLISH's own topic while its hook runs:
    not on another route's channel (disclose_publisher false), not in a task started later."""
    relay = RelayTopic()
    routes = {**ROUTES, "relay": {"pattern": "relay/{room}", "callback": "relay.topic"}}
    async with running_server(topics=[AcmeTopic(), relay], routes=routes) as server:
        subscriber = await V2Client.join(url_of(server))
        own = await listen(subscriber, "relay/room")
        quiet = await listen(subscriber, "acme/quiet/r")
        relay.other = server.broker.manager.topics["acme/quiet/r"]
        publisher = await RawPeer.connect(url_of(server))
        await publisher.hello()
        publisher.send([16, 1, {"acknowledge": True, "disclose_me": True}, "relay/room", ["x"]])
        assert (await publisher.receive())[:2] == [17, 1]
        args, details = await next_of(own)
        assert args == ("own",) and details.publisher is not None
        args, details = await next_of(quiet)
        assert args == ("other",) and details.publisher is None
        assert details.publisher_authid is None and details.publisher_authrole is None
        relay.later.set()
        args, details = await next_of(own)
        assert args == ("task",) and details.publisher is None
        await asyncio.gather(*relay.tasks)
        publisher.close()
        await subscriber.leave()


class SlowTopic(TopicHandler):
    """Waits for ``go`` before broadcasting a PUBLISH (a hook that awaits something)."""

    name = "slow.topic"

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.go = asyncio.Event()

    async def on_publish(
        self,
        connection: WampConnection,
        topic: Topic,
        request: WampRequest,
        event: Any,
        exclude: list[str],
        eligible: list[str],
    ) -> None:
        self.started.set()
        await self.go.wait()
        topic.broadcast(event, exclude, eligible)


async def test_lists_apply_to_who_subscribed_while_the_hook_awaited(keys: Keys) -> None:
    """exclude_authid is applied when the hook broadcasts: a client of that authid that
    subscribed while on_publish awaited does not get the event; another one does."""
    slow = SlowTopic()
    routes = {**ROUTES, "slow": {"pattern": "slow/{room}", "callback": "slow.topic"}}
    authentication = {"allow_anonymous": True, "providers": {"jwt": jwt_node(keys)}}
    async with running_server(
        topics=[AcmeTopic(), slow], routes=routes, authentication=authentication
    ) as server:
        publisher = await V2Client.join(url_of(server))
        anchoring = await V2Client.join(url_of(server))
        anchor = await listen(anchoring, "slow/r")  # the channel's topic lives on
        options = PublishOptions(acknowledge=True, exclude_authid=["42"])
        published = asyncio.ensure_future(publisher.session.publish("slow/r", "x", options=options))
        await asyncio.wait_for(slow.started.wait(), 5)
        late = await V2Client.join(url_of(server), ticket=keys.hs256("42"), authid="42")
        other = await V2Client.join(url_of(server))
        late_events, other_events = await listen(late, "slow/r"), await listen(other, "slow/r")
        slow.go.set()
        await published
        assert (await next_of(other_events))[0] == ("x",)
        assert (await next_of(anchor))[0] == ("x",)
        await publisher.session.publish("slow/r", "end", options=PublishOptions(acknowledge=True))
        assert (await next_of(late_events))[0] == ("end",)
        for client in (publisher, late, other, anchoring):
            await client.leave()
