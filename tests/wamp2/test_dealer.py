"""The WAMP v2 dealer: clients register procedures and call each other (autobahn-python)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallDetails, CallOptions, RegisterOptions

from gos_web_socket.app.demo import AcmeRpc, AcmeTopic
from gos_web_socket.app.server import WampServer
from gos_web_socket.app.testing import CallError, RawPeer, V2Client, WampTestClient
from tests.support.server import running_server, url_of
from tests.support.waiting import eventually
from tests.wamp2.conftest import Joiner

ROUTES: dict[str, Any] = {
    "acme_rpc": {
        "pattern": "acme/rpc/{method}",
        "callback": "acme.rpc",
        "options": {"auth": {"register": "anyone"}},
    },
    "acme_topic": {"pattern": "acme/channel/{room}", "callback": "acme.topic"},
    # client procedures only: no callback, anyone may register
    "procedures": {"pattern": "com.acme.{name}", "options": {"auth": {"register": "anyone"}}},
    # a route without a register rule: the default (authenticated) refuses anonymous clients
    "private": {"pattern": "com.private.{name}", "callback": "nothing"},
}


@pytest.fixture
async def demo_server() -> AsyncIterator[WampServer]:
    """The demo handlers on routes that also serve client procedures (conftest's ``join``
    joins this one)."""
    async with running_server(topics=[AcmeTopic()], rpcs=[AcmeRpc()], routes=ROUTES) as server:
        yield server


def add(*args: Any, **kwargs: Any) -> Any:
    return {"sum": sum(args), "kwargs": kwargs}


def in_flight(server: WampServer) -> int:
    return server.broker.dealer.invocations.in_flight


@pytest.mark.parametrize("serializer", ["json", "msgpack"])
async def test_register_and_call(join: Joiner, serializer: str) -> None:
    """A callee registers, a caller calls with arguments and keyword arguments both, gets RESULT."""
    callee = await join(serializer=serializer)
    caller = await join(serializer="json" if serializer == "msgpack" else "msgpack")
    registration = await callee.session.register(add, "com.acme.add")
    assert 1 <= registration.id <= 2**53
    result = await caller.session.call("com.acme.add", 2, 3, unit="cm")
    assert result == {"sum": 5, "kwargs": {"unit": "cm"}}
    assert await caller.session.call("acme/rpc/sum", 2, 3) == 5  # the server's own, as before


async def test_callee_error_reaches_the_caller(join: Joiner) -> None:
    """The callee's ERROR URI, arguments and keyword arguments reach the caller unchanged."""
    callee, caller = await join(), await join()

    def refuse(*args: Any) -> None:
        raise ApplicationError("com.acme.error.write_protected", "no", 7, why="locked")

    await callee.session.register(refuse, "com.acme.write")
    with pytest.raises(ApplicationError) as raised:
        await caller.session.call("com.acme.write", 1)
    assert raised.value.error == "com.acme.error.write_protected"
    assert raised.value.args == ("no", 7)
    assert raised.value.kwargs == {"why": "locked"}


async def test_register_refusals(join: Joiner) -> None:
    """Taken URI, a server RPC handler's URI, no route, and the default rule refuse REGISTER."""
    callee, other = await join(), await join()
    await callee.session.register(add, "com.acme.add")
    cases = [
        (other, "com.acme.add", "wamp.error.procedure_already_exists"),
        (other, "acme/rpc/sum", "wamp.error.procedure_already_exists"),
        (other, "nowhere.at.all", "wamp.error.invalid_uri"),
        (other, "com.private.add", "wamp.error.not_authorized"),
    ]
    for client, uri, error in cases:
        with pytest.raises(ApplicationError) as raised:
            await client.session.register(add, uri)
        assert raised.value.error == error, uri
    with pytest.raises(ApplicationError) as raised:
        await other.session.register(add, "com.acme.add", RegisterOptions(invoke="roundrobin"))
    assert raised.value.error == "wamp.error.procedure_exists_with_different_invocation_policy"


async def test_unregister(join: Joiner) -> None:
    """After UNREGISTER the procedure is gone (no_such_procedure) and the URI free again."""
    callee, caller = await join(), await join()
    registration = await callee.session.register(add, "com.acme.add")
    await registration.unregister()
    with pytest.raises(ApplicationError) as raised:
        await caller.session.call("com.acme.add", 1)
    assert raised.value.error == "wamp.error.no_such_procedure"
    await caller.session.register(add, "com.acme.add")
    assert await callee.session.call("com.acme.add", 1) == {"sum": 1, "kwargs": {}}


async def test_unregister_unknown_is_refused(demo_server: WampServer) -> None:
    """UNREGISTER of an unknown id, or of another session's registration: no_such_registration."""
    owner = await V2Client.join(url_of(demo_server))
    registration = await owner.session.register(add, "com.acme.add")
    peer = await _raw_callee(demo_server)
    for request, registration_id in ((1, 999), (2, registration.id)):
        peer.send([66, request, registration_id])
        assert await peer.receive() == [
            8,
            66,
            request,
            {},
            "wamp.error.no_such_registration",
            [f"no registration {registration_id} of this session"],
        ]
    peer.close()
    await owner.leave()


async def test_callee_gone_mid_call(demo_server: WampServer, join: Joiner) -> None:
    """A callee that disconnects fails its pending call with canceled; nothing stays in flight."""
    caller = await join()
    peer = await _raw_callee(demo_server)
    pending = asyncio.ensure_future(caller.session.call("com.acme.slow", 1))
    invocation = await peer.receive()
    assert invocation[0] == 68 and invocation[3:] == [{}, [1]]
    peer.close()
    with pytest.raises(ApplicationError) as raised:
        await pending
    assert raised.value.error == "wamp.error.canceled"
    assert in_flight(demo_server) == 0
    with pytest.raises(ApplicationError) as raised:
        await caller.session.call("com.acme.slow", 1)
    assert raised.value.error == "wamp.error.no_such_procedure"


async def test_caller_gone_mid_call(demo_server: WampServer) -> None:
    """A caller that disconnects: its call is forgotten, the callee's late YIELD dropped."""
    peer = await _raw_callee(demo_server, features={"call_canceling": True})
    caller = await V2Client.join(url_of(demo_server))
    caller.session.call("com.acme.slow", 1)
    invocation = await peer.receive()
    await caller.leave()
    assert await peer.receive() == [69, invocation[1], {"mode": "killnowait"}]
    assert in_flight(demo_server) == 0
    peer.send([70, invocation[1], {}, ["late"]])  # dropped quietly, the session stays
    peer.send([64, 10, {}, "com.acme.other"])
    assert (await peer.receive())[:2] == [65, 10]


async def test_progressive_results(join: Joiner) -> None:
    """Each YIELD progress:true is a RESULT progress:true at once; the final RESULT ends it."""
    callee, caller = await join(), await join()

    async def count(n: int, details: CallDetails) -> int:
        assert details.progress is not None
        for i in range(n):
            details.progress(i)
        return n

    await callee.session.register(count, "com.acme.count", RegisterOptions(details_arg="details"))
    seen: list[int] = []
    options = CallOptions(on_progress=seen.append)
    result = await caller.session.call("com.acme.count", 3, options=options)
    assert (seen, result) == ([0, 1, 2], 3)


async def test_cancel(demo_server: WampServer, join: Joiner) -> None:
    """CANCEL (autobahn-python sends no mode: our default, killnowait) interrupts the callee."""
    callee, caller = await join(), await join()
    started, interrupted = asyncio.Event(), asyncio.Event()

    async def forever() -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            interrupted.set()
            raise

    await callee.session.register(forever, "com.acme.forever")
    call = caller.session.call("com.acme.forever")
    await asyncio.wait_for(started.wait(), 5)
    call.cancel()
    await asyncio.wait_for(interrupted.wait(), 5)
    await eventually(lambda: in_flight(demo_server) == 0, what="no call in flight")


async def test_call_timeout(demo_server: WampServer) -> None:
    """A caller's timeout (ms) ends a call the callee never answers: wamp.error.timeout, and
    the callee that announced call_canceling gets INTERRUPT killnowait."""
    callee = await _raw_callee(demo_server, features={"call_canceling": True})
    caller = await _raw_callee(demo_server, uri="com.acme.other")
    caller.send([48, 7, {"timeout": 200}, "com.acme.slow"])
    invocation = await callee.receive()
    desc = "no answer from the callee within 0.2 s"
    assert await caller.receive() == [8, 48, 7, {}, "wamp.error.timeout", [desc]]
    assert await callee.receive() == [69, invocation[1], {"mode": "killnowait"}]
    assert in_flight(demo_server) == 0
    callee.close()
    caller.close()


async def test_v1_caller(demo_server: WampServer, join: Joiner) -> None:
    """A WAMP v1 CALL reaches a v2 client's procedure: params as arguments, the RESULT's
    arguments back as a server RPC's (a list, or the one dict); an ERROR is a CALLERROR."""
    callee = await join()
    await callee.session.register(lambda a, b: a + b, "com.acme.sum")
    await callee.session.register(lambda a: {"got": a}, "com.acme.echo")

    def refuse() -> None:
        raise ApplicationError("com.acme.error.nope", "nope")

    await callee.session.register(refuse, "com.acme.refuse")
    client = await WampTestClient.connect(url_of(demo_server))
    assert await client.call("com.acme.sum", 1, 2) == await client.call("acme/rpc/sum", 1, 2)
    assert await client.call("com.acme.echo", {"k": "v"}) == {"got": {"k": "v"}}
    with pytest.raises(CallError) as raised:
        await client.call("com.acme.refuse")
    assert (raised.value.uri, raised.value.desc) == ("com.acme.error.nope", "nope")
    await client.close()


async def _raw_callee(
    server: WampServer, features: dict[str, bool] | None = None, uri: str = "com.acme.slow"
) -> RawPeer:
    """A raw v2 callee that registered ``uri`` and answers nothing by itself."""
    peer = await RawPeer.connect(url_of(server))
    roles = {"callee": {"features": features or {}}, "caller": {}}
    peer.send([1, "realm1", {"roles": roles}])
    assert (await peer.receive())[0] == 2
    peer.send([64, 1, {}, uri])
    assert (await peer.receive())[:2] == [65, 1]
    return peer


@pytest.mark.parametrize("serializer", ["json", "msgpack"])
async def test_shared_registration_roundrobin(join: Joiner, serializer: str) -> None:
    """Three callees share a URI with invoke roundrobin: calls go 1, 2, 3, 1, ...; when one
    leaves the others carry on; a callee cannot join the same URI twice."""
    callees = [await join(serializer=serializer) for _ in range(3)]
    caller = await join(serializer=serializer)
    shared = RegisterOptions(invoke="roundrobin")
    for number, callee in enumerate(callees, 1):
        await callee.session.register(lambda n=number: n, "com.acme.who", shared)
    assert [await caller.session.call("com.acme.who") for _ in range(7)] == [1, 2, 3, 1, 2, 3, 1]
    with pytest.raises(ApplicationError) as raised:
        await callees[0].session.register(lambda: 0, "com.acme.who", shared)
    assert raised.value.error == "wamp.error.procedure_already_exists"
    await callees[1].leave()
    answers = {await caller.session.call("com.acme.who") for _ in range(4)}
    assert answers == {1, 3}


@pytest.mark.parametrize(("invoke", "expected"), [("first", 1), ("last", 3), ("random", None)])
async def test_shared_registration_policies(join: Joiner, invoke: str, expected: int) -> None:
    """first: the oldest callee, last: the newest, random: one of them each call."""
    callees = [await join() for _ in range(3)]
    caller = await join()
    for number, callee in enumerate(callees, 1):
        await callee.session.register(
            lambda n=number: n, "com.acme.who", RegisterOptions(invoke=invoke)
        )
    answers = [await caller.session.call("com.acme.who") for _ in range(30)]
    if expected is None:
        assert set(answers) <= {1, 2, 3} and len(set(answers)) > 1
    else:
        assert set(answers) == {expected}


async def test_pattern_registrations(join: Joiner) -> None:
    """Exact wins, then the longest prefix, then the best wildcard; a pattern's INVOCATION says
    which procedure was called; a server RPC route stays the server's under a pattern."""
    callee, caller = await join(), await join()

    def named(name: str) -> Any:
        return lambda details: [name, details.procedure]

    with_details = {"details_arg": "details"}
    for name, uri, match in [
        ("prefix-short", "com.acme.img", "prefix"),
        ("prefix-long", "com.acme.img.big", "prefix"),
        ("wild-end", "com.acme.img..resize", "wildcard"),
        ("wild-start", "com.acme..size.resize", "wildcard"),
        ("exact", "com.acme.img.exact", "exact"),
    ]:
        options = RegisterOptions(match=match, **with_details)
        await callee.session.register(named(name), uri, options)
    cases = {
        "com.acme.img.exact": ["exact", "com.acme.img.exact"],  # autobahn fills it in
        "com.acme.img.big.one": ["prefix-long", "com.acme.img.big.one"],
        "com.acme.img.small": ["prefix-short", "com.acme.img.small"],
        "com.acme.other.size.resize": ["wild-start", "com.acme.other.size.resize"],
    }
    for uri, expected in cases.items():
        assert await caller.session.call(uri) == expected, uri
    await callee.session.register(named("wild"), "com.acme.x.", RegisterOptions(match="prefix"))
    with pytest.raises(ApplicationError) as raised:
        await callee.session.register(named("x"), "acme/rpc/s", RegisterOptions(match="prefix"))
    assert raised.value.error == "wamp.error.procedure_already_exists"
    assert await caller.session.call("acme/rpc/sum", 1, 2) == 3
