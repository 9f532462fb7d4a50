"""The dealer's budgets and error paths, with raw v2 peers (app/testing) on a real server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from autobahn.exception import Disconnected

from gos_web_socket.app.exceptions import ConfigurationError
from gos_web_socket.app.server import WampServer
from gos_web_socket.app.testing import RawPeer
from gos_web_socket.settings.models import load_settings
from tests.support.server import running_server, url_of
from tests.support.waiting import eventually

ROUTES: dict[str, Any] = {
    "procedures": {"pattern": "com.acme.{name}", "options": {"auth": {"register": "anyone"}}},
    "secret": {
        "pattern": "com.secret.{name}",
        "options": {"auth": {"register": "anyone"}, "disclose_caller": False},
    },
}
LIMITS = {
    "max_registrations": 2,
    "max_pending_invocations": 2,
    "max_pending_calls": 3,
    "max_progressive_results": 2,
    "call_timeout": 0.3,
}
CANCELING = {"call_canceling": True, "progressive_call_results": True}


@pytest.fixture
async def server() -> AsyncIterator[WampServer]:
    async with running_server(routes=ROUTES, limits=LIMITS) as running:
        yield running


async def peer(server: WampServer, *uris: str, features: dict[str, bool] | None = None) -> RawPeer:
    """A joined raw peer (callee features as given) that registered ``uris``, request ids 1.."""
    client = await RawPeer.connect(url_of(server))
    roles: dict[str, Any] = {"callee": {"features": features or {}}, "caller": {}}
    client.send([1, "realm1", {"roles": roles}])
    assert (await client.receive())[0] == 2
    for request, uri in enumerate(uris, 1):
        client.send([64, request, {}, uri])
        assert (await client.receive())[:2] == [65, request]
    return client


def in_flight(server: WampServer) -> int:
    return server.broker.dealer.invocations.in_flight


async def test_max_registrations_closes_with_1008(server: WampServer) -> None:
    """A third REGISTER past max_registrations 2 closes the callee; its procedures go with it."""
    callee = await peer(server, "com.acme.a", "com.acme.b")
    callee.send([64, 3, {}, "com.acme.c"])
    assert await callee.wait_closed() == 1008
    await eventually(lambda: len(server.broker.dealer.registrations) == 0, what="none left")


async def test_busy_callee_answers_unavailable(server: WampServer) -> None:
    """Past max_pending_invocations the caller gets wamp.error.unavailable; the callee stays."""
    callee = await peer(server, "com.acme.slow")
    caller = await peer(server)
    for request in (1, 2, 3):
        caller.send([48, request, {}, "com.acme.slow"])
    error = await caller.receive()
    assert error[:5] == [8, 48, 3, {}, "wamp.error.unavailable"]
    first, second = await callee.receive(), await callee.receive()
    callee.send([70, second[1], {}, ["two"]])
    callee.send([70, first[1], {}, ["one"]])
    assert await caller.receive() == [50, 2, {}, ["two"]]
    assert await caller.receive() == [50, 1, {}, ["one"]]
    assert in_flight(server) == 0


async def test_caller_past_max_pending_calls_is_closed(server: WampServer) -> None:
    """A caller with max_pending_calls 3 unanswered calls is closed at the fourth (1008)."""
    await peer(server, "com.acme.a")
    await peer(server, "com.acme.b")
    caller = await peer(server)
    for request, uri in enumerate(("com.acme.a", "com.acme.a", "com.acme.b", "com.acme.b"), 1):
        caller.send([48, request, {}, uri])
    assert await caller.wait_closed() == 1008
    await eventually(lambda: in_flight(server) == 0, what="calls forgotten")


async def test_progressive_flood_ends_the_call(server: WampServer) -> None:
    """Past max_progressive_results the caller gets canceled and the callee INTERRUPT."""
    callee = await peer(server, "com.acme.stream", features=CANCELING)
    caller = await peer(server)
    caller.send([48, 1, {"receive_progress": True}, "com.acme.stream"])
    invocation = await callee.receive()
    assert invocation[3] == {"receive_progress": True}
    for n in range(3):
        callee.send([70, invocation[1], {"progress": True}, [n]])
    assert await caller.receive() == [50, 1, {"progress": True}, [0]]
    assert await caller.receive() == [50, 1, {"progress": True}, [1]]
    error = await caller.receive()
    assert error[:5] == [8, 48, 1, {}, "wamp.error.canceled"]
    assert await callee.receive() == [69, invocation[1], {"mode": "killnowait"}]
    assert in_flight(server) == 0


async def test_server_call_timeout(server: WampServer) -> None:
    """A callee that never yields: server.limits.call_timeout ends the call, nothing is kept."""
    callee = await peer(server, "com.acme.never")
    caller = await peer(server)
    caller.send([48, 1, {}, "com.acme.never"])
    await callee.receive()
    error = await caller.receive(timeout=2)
    assert error[:5] == [8, 48, 1, {}, "wamp.error.timeout"]
    assert in_flight(server) == 0


@pytest.mark.parametrize("mode", ["skip", "kill", "killnowait"])
async def test_cancel_modes(server: WampServer, mode: str) -> None:
    """skip: ERROR now, no INTERRUPT; killnowait: ERROR now and INTERRUPT; kill: INTERRUPT, then
    the callee's own answer reaches the caller."""
    callee = await peer(server, "com.acme.slow", features=CANCELING)
    caller = await peer(server)
    caller.send([48, 1, {}, "com.acme.slow"])
    invocation = await callee.receive()
    caller.send([49, 1, {"mode": mode}])
    if mode != "kill":
        error = await caller.receive()
        assert error[:5] == [8, 48, 1, {}, "wamp.error.canceled"]
    if mode != "skip":
        assert await callee.receive() == [69, invocation[1], {"mode": mode}]
    callee.send([8, 68, invocation[1], {}, "wamp.error.canceled", ["stopped"]])
    if mode == "kill":
        assert await caller.receive() == [8, 48, 1, {}, "wamp.error.canceled", ["stopped"]]
    caller.send([48, 2, {"timeout": 5000}, "com.acme.slow"])  # the session goes on
    second = await callee.receive()
    callee.send([70, second[1], {}])
    assert await caller.receive() == [50, 2, {}]
    assert in_flight(server) == 0


async def test_cancel_without_call_canceling_is_skip(server: WampServer) -> None:
    """A callee that did not announce call_canceling never gets INTERRUPT: every mode is skip."""
    callee = await peer(server, "com.acme.slow")
    caller = await peer(server)
    caller.send([48, 1, {}, "com.acme.slow"])
    invocation = await callee.receive()
    caller.send([49, 1, {"mode": "kill"}])
    assert (await caller.receive())[:5] == [8, 48, 1, {}, "wamp.error.canceled"]
    callee.send([70, invocation[1], {}, ["late"]])  # dropped
    callee.send([64, 9, {}, "com.acme.next"])
    assert await callee.receive() == [65, 9, (await _registration(server, "com.acme.next"))]


async def test_answers_for_other_sessions_are_dropped(server: WampServer) -> None:
    """A YIELD or ERROR naming another callee's invocation changes nothing."""
    callee = await peer(server, "com.acme.slow")
    intruder = await peer(server)
    caller = await peer(server)
    caller.send([48, 1, {}, "com.acme.slow"])
    invocation = await callee.receive()
    intruder.send([70, invocation[1], {}, ["forged"]])
    intruder.send([8, 68, invocation[1], {}, "com.forged"])
    intruder.send([64, 5, {}, "com.acme.mine"])  # answered after the forged ones were handled
    assert (await intruder.receive())[:2] == [65, 5]
    callee.send([70, invocation[1], {}, ["real"]])
    assert await caller.receive() == [50, 1, {}, ["real"]]


async def test_unknown_register_options_are_refused(server: WampServer) -> None:
    """REGISTER with a match or invoke this dealer does not know: ERROR invalid_argument."""
    client = await peer(server)
    for request, options in enumerate(({"match": "regex"}, {"invoke": "nearest"}), 1):
        client.send([64, request, options, "com.acme.x"])
        error = await client.receive()
        assert error[:5] == [8, 64, request, {}, "wamp.error.invalid_argument"], error


@pytest.mark.parametrize(
    "message",
    [
        [8, 48, 1, {}, "wamp.error.canceled"],  # a client answers INVOCATION only
        [49, 1, {"mode": "later"}],  # unknown cancel mode
        [48, 1, {"timeout": -1}, "com.acme.slow"],
        [70, 1, {"progress": "yes"}],
        [64, 1, {}],
    ],
)
async def test_protocol_violations(server: WampServer, message: list[Any]) -> None:
    """Malformed dealer messages are answered with ABORT protocol_violation, then close."""
    await peer(server, "com.acme.slow")
    client = await peer(server)
    client.send(message)
    abort = await client.receive()
    assert abort[0] == 3 and abort[2] == "wamp.error.protocol_violation"
    assert await client.wait_closed() is not None


async def _registration(server: WampServer, uri: str) -> int:
    registration = server.broker.dealer.registrations.procedure(uri)
    assert registration is not None
    return registration.id


async def test_caller_identification(server: WampServer) -> None:
    """disclose_me (CALL) or disclose_caller (REGISTER) name the caller in INVOCATION details,
    unless the route says disclose_caller: false (option_disallowed.disclose_me)."""
    callee = await peer(server, "com.acme.open", "com.secret.hidden")
    before = {c.session_id for c in server.live_connections}
    caller = await peer(server)
    (caller_id,) = {c.session_id for c in server.live_connections} - before
    caller.send([48, 1, {"disclose_me": True}, "com.acme.open"])
    invocation = await callee.receive()
    assert invocation[3] == {
        "caller": int(caller_id),
        "caller_authid": caller_id,
        "caller_authrole": "anonymous",
    }
    callee.send([70, invocation[1], {}])
    assert await caller.receive() == [50, 1, {}]
    caller.send([48, 2, {}, "com.acme.open"])  # not asked: not disclosed
    assert (await callee.receive())[3] == {}
    caller.send([48, 3, {"disclose_me": True}, "com.secret.hidden"])
    error = await caller.receive()
    assert error[:5] == [8, 48, 3, {}, "wamp.error.option_disallowed.disclose_me"]
    teller = await peer(server)  # max_registrations is 2: a callee of its own
    teller.send([64, 9, {"disclose_caller": True}, "com.acme.told"])
    assert (await teller.receive())[:2] == [65, 9]
    caller.send([48, 4, {}, "com.acme.told"])
    assert (await teller.receive())[3]["caller"] == int(caller_id)


FLOOD_LIMITS = {
    "max_pending_calls": 100,
    "max_pending_invocations": 100,
    "messages_per_second": 10_000,
    "messages_burst": 1_000,
    "frames_per_second": 10_000,
    "frames_burst": 1_000,
}


async def test_killed_callees_leak_nothing() -> None:
    """1,000 calls to callees killed mid-call (10 callees, 100 calls each, TCP dropped): every
    call ends canceled, and no registration, call or session is left behind."""
    async with running_server(routes=ROUTES, limits=FLOOD_LIMITS) as server:
        dealer = server.broker.dealer
        caller = await peer(server)
        (connection,) = server.live_connections
        caller_id = connection.session_id
        request = 0
        for _ in range(10):
            callee = await peer(server, "com.acme.victim")
            for _ in range(100):
                request += 1
                caller.send([48, request, {}, "com.acme.victim", [request]])
            for _ in range(100):
                assert (await callee.receive())[0] == 68
            assert dealer.invocations.in_flight == 100
            kill(callee)
            errors = [await caller.receive() for _ in range(100)]
            assert {error[1] for error in errors} == {48}
            assert {error[4] for error in errors} == {"wamp.error.canceled"}
            assert {error[2] for error in errors} == set(range(request - 99, request + 1))
            assert dealer.invocations.in_flight == 0
        assert len(dealer.registrations) == 0
        assert dealer.invocations.pending(caller_id) == (0, 0)
        await eventually(lambda: server.connections == 1, what="only the caller left")
        caller.close()


def kill(client: RawPeer) -> None:
    """Drop the TCP connection: no WebSocket close, no GOODBYE (a crashed callee)."""
    protocol = client._protocol  # noqa: SLF001  (the raw peer has no abort of its own)
    assert protocol is not None and protocol.transport is not None
    protocol.transport.abort()


SLOW_BUDGET = {
    "messages_per_second": 1,
    "messages_burst": 20,
    "frames_per_second": 1,
    "frames_burst": 20,
}


async def test_answered_calls_do_not_spend_the_message_budget() -> None:
    """With a budget of 20 messages and 1/s, 200 answered calls pass (caller and callee stay
    open: answered dealer traffic gives its tokens back), then 40 calls of a URI nobody
    serves close the caller with 1008 (unanswered traffic still counts)."""
    async with running_server(routes=ROUTES, limits=LIMITS | SLOW_BUDGET) as server:
        callee = await peer(server, "com.acme.echo")
        caller = await peer(server)
        for request in range(1, 201):
            caller.send([48, request, {}, "com.acme.echo", [request]])
            invocation = await callee.receive()
            assert invocation[0] == 68
            callee.send([70, invocation[1], {}, invocation[4]])
            assert await caller.receive() == [50, request, {}, [request]]
        assert server.connections == 2
        for request in range(201, 241):
            caller.send([48, request, {}, "com.acme.nobody"])
        assert await caller.wait_closed() == 1008
        callee.close()


async def next_of(client: RawPeer) -> Any:
    """The client's next message; None once the server closed it."""
    receiving = asyncio.ensure_future(client.receive(10))
    await asyncio.wait([receiving, client.closed], return_when=asyncio.FIRST_COMPLETED)
    if not receiving.done():
        receiving.cancel()
        return None
    return receiving.result()


async def test_self_calls_spend_calls_per_second() -> None:
    """A client calling its own procedure pays calls_per_second for each answered CALL and
    YIELD (not free as a refund made it): with 40 at once and 10/s it is closed 1008 within
    200 round trips."""
    budget = SLOW_BUDGET | {"calls_per_second": 10, "calls_burst": 40}
    async with running_server(routes=ROUTES, limits=LIMITS | budget) as server:
        client = await peer(server, "com.acme.echo")
        for request in range(1, 201):
            try:
                client.send([48, request, {}, "com.acme.echo", [request]])
                invocation = await next_of(client)
                if invocation is not None:
                    client.send([70, invocation[1], {}, invocation[4]])
                    await next_of(client)
            except Disconnected:  # the server is closing it
                break
            if client.closed.done():
                break
        assert await client.wait_closed() == 1008
        assert request < 100


def test_calls_per_second_must_be_positive(monkeypatch: pytest.MonkeyPatch) -> None:
    """A zero calls_per_second stops start-up with one line: key path, value, what is allowed."""
    monkeypatch.setenv("GOS_WEB_SOCKET__SERVER__LIMITS__CALLS_PER_SECOND", "0")
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    assert raised.value.problems == [
        "server.limits.calls_per_second: '0' is not allowed: Input should be greater than 0"
    ]
