"""Pattern registrations (``match: prefix | wildcard``) across two nodes on one RabbitMQ."""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallDetails, RegisterOptions

from gos_web_socket.app.server.wamp2.dealer import Dealer
from gos_web_socket.app.server.wamp2.nodes import NodeLink
from gos_web_socket.app.server.wamp2.registrations import Registration, Terms
from gos_web_socket.app.server.wamp2.relay import WorkerRelay
from gos_web_socket.app.testing import V2Client
from gos_web_socket.settings.dealer import DealerSettings
from gos_web_socket.settings.models import AmqpSettings
from tests.support.rabbitmq import RabbitMQNode
from tests.support.waiting import outcome, settles
from tests.wamp2.test_dealer_nodes import NOBODY, Callee, Relay, nodes, published

NOT_YET = [NOBODY, "wamp.error.canceled"]
"""The errors a call may answer while a change crosses: nobody serves the URI, or the callee's
node died with the call (docs/wamp2.md: a node dies)."""


async def becomes(call: Callable[[], Awaitable[Any]], expected: Any, within: float = 15) -> None:
    """Wait until ``call()`` answers ``expected`` (the other node's ``held`` or ``released``
    is on its way, or its expiry); the last answer is shown when it never does."""
    await settles(
        lambda: outcome(call(), NOT_YET), lambda got: got == expected, within, what=repr(expected)
    )


def named(name: str) -> Callable[[CallDetails], list[Any]]:
    """A procedure answering its name and the URI called."""
    return lambda details: [name, details.procedure]


async def register(client: V2Client, name: str, uri: str, match: str) -> Any:
    options = RegisterOptions(match=match, details_arg="details")
    return await client.session.register(named(name), uri, options)


async def test_pattern_registrations_cross_nodes(rabbitmq: RabbitMQNode) -> None:
    """A call on either node reaches the other node's prefix and wildcard callees in the
    spec's order over both nodes (an exact on A beats a prefix on B, a longer prefix on A a
    shorter one on B); the same pattern is refused on the other node, the same URI as exact
    is not; UNREGISTER, a session's end and node A's death (SIGKILL) release A's patterns."""
    async with nodes(rabbitmq) as (a, b):
        on_a, exact_a = await V2Client.join(a.ws_url), await V2Client.join(a.ws_url)
        on_b, caller = await V2Client.join(b.ws_url), await V2Client.join(b.ws_url)
        await register(on_b, "short-b", "com.acme.img", "prefix")
        await register(on_a, "long-a", "com.acme.img.big", "prefix")
        wild = await register(on_a, "wild-a", "com.acme..size.resize", "wildcard")
        await register(exact_a, "exact-a", "com.acme.img.exact", "exact")

        def call(uri: str, by: V2Client = caller) -> Callable[[], Awaitable[Any]]:
            return lambda: by.session.call(uri)

        await becomes(call("com.acme.img.exact"), ["exact-a", "com.acme.img.exact"])
        await becomes(call("com.acme.img.big.one"), ["long-a", "com.acme.img.big.one"])
        await becomes(call("com.acme.x.size.resize"), ["wild-a", "com.acme.x.size.resize"])
        assert await call("com.acme.img.small")() == ["short-b", "com.acme.img.small"]
        await becomes(call("com.acme.img.small", on_a), ["short-b", "com.acme.img.small"])
        assert await call("com.acme.img.big.two", on_a)() == ["long-a", "com.acme.img.big.two"]

        with pytest.raises(ApplicationError) as taken:
            await register(on_b, "long-b", "com.acme.img.big", "prefix")
        assert taken.value.error == "wamp.error.procedure_already_exists"
        with pytest.raises(ApplicationError) as taken_back:
            await register(on_a, "short-a", "com.acme.img", "prefix")
        assert taken_back.value.error == "wamp.error.procedure_already_exists"
        await register(on_b, "big-b", "com.acme.img.big", "exact")
        await becomes(call("com.acme.img.big", on_a), ["big-b", "com.acme.img.big"])

        await wild.unregister()
        await becomes(call("com.acme.x.size.resize"), NOBODY)
        await register(on_b, "wild-b", "com.acme..size.resize", "wildcard")
        assert await call("com.acme.y.size.resize")() == ["wild-b", "com.acme.y.size.resize"]
        await exact_a.leave()
        await becomes(call("com.acme.img.exact"), ["short-b", "com.acme.img.exact"])

        a.signal(signal.SIGKILL)
        await becomes(call("com.acme.img.big.one"), ["short-b", "com.acme.img.big.one"])
        await register(on_b, "long-b", "com.acme.img.big", "prefix")
        assert await call("com.acme.img.big.one")() == ["long-b", "com.acme.img.big.one"]
        for client in (on_b, caller):
            await client.leave()


async def test_beats_carry_patterns() -> None:
    """A beat names exact URIs in ``uris`` and patterns in ``patterns``; a peer's beat tells
    the relay of its patterns (held, with match) and, once a pattern is missing from it, of
    its release; a claim of a pattern a peer holds fails without a claim sent."""
    link = NodeLink(DealerSettings(across_nodes=True, claim_window=0.01), AmqpSettings())
    relay = Relay()
    link.attach(relay)
    link.send({"op": "claim", "uri": "com.acme.x"})
    link.send({"op": "claim", "uri": "com.acme.", "match": "prefix"})
    await relay.claims(2)
    beat = {"op": "beat", "uris": ["com.acme.x"], "patterns": [["prefix", "com.acme."]]}
    assert link.beat() == beat
    peer = "z" * 12
    link.received({"op": "beat", "uris": [], "patterns": [["wildcard", "com..y"]], "from": peer})
    held = {"op": "held", "uri": "com..y", "match": "wildcard", "worker": peer}
    assert relay.told[-1] == held
    published(link)
    link.send({"op": "claim", "uri": "com..y", "match": "wildcard"})
    await relay.claims(3)
    assert relay.told[-1] == {"op": "claimed", "uri": "com..y", "match": "wildcard", "ok": False}
    assert published(link) == []
    link.received({"op": "beat", "uris": [], "from": peer})
    assert relay.told[-1] == {"op": "released", "uri": "com..y", "match": "wildcard"}


async def test_two_nodes_holding_one_pattern_settle_on_the_smaller_id() -> None:
    """A peer with a smaller id announces a prefix this node holds too: this node gives the
    pattern up (released with its match), its callee gets UNREGISTERED, and calls the pattern
    covers go to the peer; the same URI registered exact here is not touched."""
    link = NodeLink(DealerSettings(across_nodes=True, claim_window=0.01), AmqpSettings())
    dealer = Dealer()
    dealer.relay = relay = WorkerRelay(dealer, link.send)
    link.attach(relay)
    callee = Callee("s1", revokes=True)
    prefix = await dealer.register(callee, "com.acme.", 10, Terms(match="prefix"))
    exact = await dealer.register(callee, "com.acme.", 10)
    assert isinstance(prefix, Registration) and isinstance(exact, Registration)
    assert link.held == {("prefix", "com.acme."), ("exact", "com.acme.")}
    published(link)
    link.received({"op": "held", "uri": "com.acme.", "match": "prefix", "from": "0" * 12})
    assert link.held == {("exact", "com.acme.")}
    assert published(link) == [
        {"op": "released", "uri": "com.acme.", "match": "prefix", "from": link.node}
    ]
    reason = {"registration": prefix.id, "reason": "wamp.error.procedure_already_exists"}
    assert callee.sent == [[67, 0, reason]]
    found = dealer.procedure("com.acme.x")
    assert found is not None and found.callee.session_id == "worker:" + "0" * 12
    assert dealer.procedure("com.acme.") is exact
