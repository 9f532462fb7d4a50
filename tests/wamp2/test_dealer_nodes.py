"""Calls between clients of two servers (nodes) on one RabbitMQ (``server.dealer.across_nodes``)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from autobahn.wamp.exception import ApplicationError

from gos_web_socket.app.exceptions import ConfigurationError
from gos_web_socket.app.server.wamp2.dealer import Dealer
from gos_web_socket.app.server.wamp2.nodes import NodeLink
from gos_web_socket.app.server.wamp2.registrations import Registration
from gos_web_socket.app.server.wamp2.relay import WorkerRelay
from gos_web_socket.app.testing import RawPeer, V2Client
from gos_web_socket.containers import dealer_node
from gos_web_socket.settings.dealer import DealerSettings
from gos_web_socket.settings.models import AmqpSettings
from tests.ops.conftest import scrape
from tests.support.process import ServerProcess, server_env
from tests.support.rabbitmq import RabbitMQNode, free_port
from tests.support.waiting import outcome, settles
from tests.wamp2.test_dealer_workers import connections, leave_all, on_other_worker, two_workers

ROUTING = Path(__file__).with_name("dealer_routing.yaml")


@contextlib.asynccontextmanager
async def nodes(
    rabbitmq: RabbitMQNode, **extra: str
) -> AsyncIterator[tuple[ServerProcess, ServerProcess]]:
    """Two servers sharing a dealer exchange (``extra``: more environment); heartbeats of
    0.5 s so that a dead node expires within 5 s, loose enough for a loaded machine."""
    exchange = f"dealer_{uuid.uuid4().hex[:8]}"
    servers = []
    for _ in range(2):
        env = server_env(
            rabbitmq,
            SERVER__ROUTER__RESOURCES=f'["{ROUTING}"]',
            SERVER__DEALER__ACROSS_NODES="true",
            SERVER__DEALER__EXCHANGE_NAME=exchange,
            SERVER__DEALER__HEARTBEAT="0.5",
            SERVER__DEALER__NODE_TIMEOUT="5",
            **extra,
        )
        servers.append(await ServerProcess(env).start())
    try:
        for server in servers:
            await (await server.connect()).close()
        yield servers[0], servers[1]
    finally:
        for server in servers:
            await server.stop()


NOBODY = "wamp.error.no_such_procedure"
"""What a call on one node answers until the other node's announcement of its callee came."""


async def served(call: Callable[[], Awaitable[Any]]) -> Any:
    """``call()``'s result once a callee serves it (the other node's announcement is on its
    way); its other errors are raised."""
    return await settles(lambda: outcome(call(), [NOBODY]), lambda got: got != NOBODY)


@pytest.mark.parametrize("serializer", ["json", "msgpack"])
async def test_call_reaches_a_callee_on_another_node(
    rabbitmq: RabbitMQNode, serializer: str
) -> None:
    """A callee on node A, a caller on node B: args, kwargs and callee errors cross; node B
    refuses a second REGISTER of the URI (procedure_already_exists); a v1 caller on node B
    reaches node A's callee too."""
    async with nodes(rabbitmq) as (a, b):
        callee = await V2Client.join(a.ws_url, serializer=serializer)
        caller = await V2Client.join(b.ws_url, serializer=serializer)

        def refuse() -> None:
            raise ApplicationError("com.acme.error.nope", "nope")

        await callee.session.register(lambda *a, **k: [a, k], "com.acme.echo")
        await callee.session.register(refuse, "com.acme.refuse")
        echoed = await served(lambda: caller.session.call("com.acme.echo", 1, k="v"))
        assert echoed == [[1], {"k": "v"}]
        with pytest.raises(ApplicationError) as raised:
            await served(lambda: caller.session.call("com.acme.refuse"))
        assert (raised.value.error, raised.value.args) == ("com.acme.error.nope", ("nope",))
        with pytest.raises(ApplicationError) as taken:
            await caller.session.register(lambda: 1, "com.acme.echo")
        assert taken.value.error == "wamp.error.procedure_already_exists"
        await callee.session.register(lambda x, y: x + y, "com.acme.add")
        assert await served(lambda: caller.session.call("com.acme.add", 1, 1)) == 2  # B knows
        v1 = await b.connect()  # a WAMP v1 caller on node B (docs/wamp2.md, v1 callers)
        assert await v1.call("com.acme.add", 2, 3) == [5]
        await v1.close()
        for client in (callee, caller):
            await client.leave()


async def test_simultaneous_registers_on_two_nodes(rabbitmq: RabbitMQNode) -> None:
    """Two nodes register one URI at the same moment with a 5 s claim window, so both claims
    are in their window at once (each node hears the other's claim, not its held): exactly
    one REGISTER succeeds, the other gets procedure_already_exists, and calls from both nodes
    reach the winner."""
    async with nodes(rabbitmq, SERVER__DEALER__CLAIM_WINDOW="5") as (a, b):
        first = await V2Client.join(a.ws_url)
        second = await V2Client.join(b.ws_url)
        outcomes = await asyncio.gather(
            first.session.register(lambda: "a", "com.acme.race"),
            second.session.register(lambda: "b", "com.acme.race"),
            return_exceptions=True,
        )
        refused = [o for o in outcomes if isinstance(o, ApplicationError)]
        assert len(refused) == 1, outcomes
        assert refused[0].error == "wamp.error.procedure_already_exists"
        winner = "a" if refused[0] is outcomes[1] else "b"
        assert await served(lambda: first.session.call("com.acme.race")) == winner
        assert await served(lambda: second.session.call("com.acme.race")) == winner
        for client in (first, second):
            await client.leave()


async def raw_peer(server: ServerProcess, features: dict[str, bool]) -> RawPeer:
    peer = await RawPeer.connect(server.ws_url)
    peer.send([1, "realm1", {"roles": {"callee": {"features": features}, "caller": {}}}])
    assert (await peer.receive())[0] == 2
    return peer


async def first_of(*waits: Awaitable[Any]) -> list[Any]:
    """The result of the first of ``waits`` to finish, None for the others (cancelled)."""
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in tasks:
        task.cancel()
    done = [t.result() if t.done() and not t.cancelled() else None for t in tasks]
    return done


async def test_cancel_crosses_nodes(rabbitmq: RabbitMQNode) -> None:
    """CANCEL killnowait on node B of a call served on node A: the caller gets canceled at
    once, the callee INTERRUPT, and neither node keeps the call."""
    async with nodes(rabbitmq) as (a, b):
        callee = await raw_peer(a, {"call_canceling": True})
        callee.send([64, 1, {}, "com.acme.forever"])
        assert (await callee.receive())[:2] == [65, 1]
        caller = await raw_peer(b, {})
        invocation = None
        for request in range(1, 200):  # until node B has heard of A's procedure
            caller.send([48, request, {}, "com.acme.forever"])
            answer, invocation = await first_of(caller.receive(10), callee.receive(10))
            if invocation is not None:
                break
            assert answer[4] == "wamp.error.no_such_procedure", answer
            await asyncio.sleep(0.05)
        assert invocation is not None and invocation[0] == 68
        caller.send([49, request, {"mode": "killnowait"}])
        assert (await caller.receive())[:5] == [8, 48, request, {}, "wamp.error.canceled"]
        assert (await callee.receive())[:3] == [69, invocation[1], {"mode": "killnowait"}]
        for server in (a, b):
            assert (await scrape(server.metrics_port))["gos_websocket_calls_in_flight"] == 0
        caller.close()
        callee.close()


async def test_callee_node_killed_mid_call(rabbitmq: RabbitMQNode) -> None:
    """Node A dies (SIGKILL: no bye) mid-call: the caller on node B gets wamp.error.canceled
    once A expires (node_timeout 5 s, well before the call's own timeout); A's procedure is
    gone and can be registered on B."""
    async with nodes(rabbitmq) as (a, b):
        callee = await V2Client.join(a.ws_url)
        caller = await V2Client.join(b.ws_url)
        started = asyncio.Event()

        async def slow() -> None:
            started.set()
            await asyncio.sleep(60)

        await callee.session.register(slow, "com.acme.slow")
        pending = asyncio.ensure_future(served(lambda: caller.session.call("com.acme.slow")))
        await asyncio.wait_for(started.wait(), 10)
        a.signal(signal.SIGKILL)
        loop = asyncio.get_running_loop()
        killed = loop.time()
        with pytest.raises(ApplicationError) as raised:
            await asyncio.wait_for(pending, 30)
        assert raised.value.error == "wamp.error.canceled"
        assert loop.time() - killed < 20
        with pytest.raises(ApplicationError) as gone:
            await caller.session.call("com.acme.slow")
        assert gone.value.error == "wamp.error.no_such_procedure"
        await caller.session.register(lambda: "here", "com.acme.slow")
        assert await caller.session.call("com.acme.slow") == "here"
        await caller.leave()


def test_across_nodes_needs_amqp() -> None:
    """across_nodes without the AMQP pusher stops start-up with one line naming both keys."""
    with pytest.raises(ConfigurationError) as raised:
        dealer_node(DealerSettings(across_nodes=True), AmqpSettings())
    (problem,) = raised.value.problems
    assert "server.dealer.across_nodes" in problem and "pushers.amqp.enabled" in problem
    assert dealer_node(DealerSettings(), AmqpSettings()) is None


def test_node_timeout_must_outlast_two_heartbeats() -> None:
    """A node_timeout of at most twice the heartbeat is refused, naming both values."""
    with pytest.raises(ValueError, match="node_timeout 4.0 must be more than twice heartbeat"):
        DealerSettings(heartbeat=2, node_timeout=4)


async def test_workers_are_nodes_of_their_own(rabbitmq: RabbitMQNode) -> None:
    """workers: 2 with across_nodes: each worker is a node; a call from one worker's client
    reaches a callee on the other worker through RabbitMQ."""
    env = server_env(
        rabbitmq,
        SERVER__WORKERS=2,
        SERVER__DEALER__ACROSS_NODES="true",
        SERVER__DEALER__EXCHANGE_NAME=f"dealer_{uuid.uuid4().hex[:8]}",
        PUSHERS__AMQP__QUEUE_MODE="per_node",
    )
    async with two_workers(env) as server:
        callee = await V2Client.join(server.ws_url)
        (home,) = [i for i, (_, n) in (await connections(server)).items() if n == 1]
        await callee.session.register(lambda x: x * 2, "com.acme.double")
        caller, extra = await on_other_worker(server, home)
        assert await served(lambda: caller.session.call("com.acme.double", 21)) == 42
        await leave_all(callee, caller, *extra)


def published(link: NodeLink) -> list[dict[str, Any]]:
    """What ``link`` queued for RabbitMQ so far (it is not started: nothing leaves)."""
    return link.outbox.taken()


class Relay:
    """Stands for the relay: what the link told it, and an event per message."""

    def __init__(self) -> None:
        self.told: list[dict[str, Any]] = []
        self.outcome = asyncio.Event()

    def received(self, message: dict[str, Any]) -> None:
        self.told.append(message)
        self.outcome.set()

    async def claims(self, count: int) -> None:
        """Wait until ``count`` claims ended."""
        await self.wait_for(lambda _: sum(m["op"] == "claimed" for m in self.told) >= count)

    async def wait_for(self, test: Callable[[dict[str, Any]], bool], within: float = 10) -> None:
        """Wait until a message told passes ``test``."""
        while not any(test(m) for m in self.told):
            self.outcome.clear()
            await asyncio.wait_for(self.outcome.wait(), within)


async def test_release_during_the_claim_window_is_kept() -> None:
    """A callee leaving while its REGISTER is claimed: the claim ends without holding the URI
    (released published), so another node may claim it; two claims in a row both end."""
    link = NodeLink(DealerSettings(across_nodes=True, claim_window=0.05), AmqpSettings())
    relay = Relay()
    link.attach(relay)
    link.send({"op": "claim", "uri": "com.acme.x"})
    link.send({"op": "claim", "uri": "com.acme.x"})
    await asyncio.sleep(0)
    link.send({"op": "release", "uri": "com.acme.x"})
    await relay.claims(2)
    assert link.held == set()
    assert [m["op"] for m in published(link)] == ["claim", "claim", "released", "released"]
    link.received({"op": "claim", "uri": "com.acme.x", "from": "zzzz"})
    assert published(link) == []  # no objection: the other node gets the URI


class Callee:
    """A local callee that records what the dealer sends it."""

    cancels = progresses = False

    def __init__(self, session_id: str, revokes: bool) -> None:
        self.session_id = session_id
        self.revokes = revokes
        self.sent: list[list[Any]] = []

    def send(self, message: list[Any]) -> bool:
        self.sent.append(message)
        return True


async def test_two_nodes_holding_one_uri_settle_on_the_smaller_id() -> None:
    """A peer announces a URI this node holds too: with a larger id the peer is ignored
    (objected by its beat later); with a smaller id this node gives it up: released is
    published, its callee gets UNREGISTERED (registration_revocation), calls go to the peer."""
    link = NodeLink(DealerSettings(across_nodes=True, claim_window=0.01), AmqpSettings())
    dealer = Dealer()
    dealer.relay = relay = WorkerRelay(dealer, link.send)
    link.attach(relay)
    callee = Callee("s1", revokes=True)
    registration = await dealer.register(callee, "com.acme.x", 10)
    assert isinstance(registration, Registration) and link.held == {("exact", "com.acme.x")}
    published(link)
    link.received({"op": "beat", "uris": ["com.acme.x"], "from": "z" * 12})
    assert link.held == {("exact", "com.acme.x")} and published(link) == []
    link.received({"op": "held", "uri": "com.acme.x", "from": "0" * 12})
    assert link.held == set()
    assert [m["op"] for m in published(link)] == ["released"]
    reason = {"registration": registration.id, "reason": "wamp.error.procedure_already_exists"}
    assert callee.sent == [[67, 0, reason]]
    found = dealer.procedure("com.acme.x")
    assert found is not None and found.callee.session_id == "worker:" + "0" * 12


async def test_link_uses_the_nodes_fails_unroutable_invokes_and_says_bye(
    rabbitmq: RabbitMQNode,
) -> None:
    """pushers.amqp.nodes with a dead first node: the link connects to the live one; an
    invoke to a node whose queue is gone fails at once (canceled, not after call_timeout);
    a link that closes says bye, so its peer releases its URIs at once (node_timeout 60 s)."""
    nodes = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{rabbitmq.port}"]
    amqp = rabbitmq.amqp_settings().model_copy(update={"nodes": nodes})
    settings = DealerSettings(
        across_nodes=True, exchange_name=f"dealer_{uuid.uuid4().hex[:8]}", node_timeout=60
    )
    first, second = NodeLink(settings, amqp), NodeLink(settings, amqp)
    heard, told = Relay(), Relay()
    first.attach(heard)
    second.attach(told)
    await first.start()
    await second.start()
    try:
        second.send({"op": "claim", "uri": "com.acme.x"})
        await told.claims(1)
        first.send({"op": "invoke", "to": "nobody", "id": 7, "uri": "com.acme.x"})
        await heard.wait_for(lambda m: m["op"] == "answer")
        failed = [m for m in heard.told if m["op"] == "answer"]
        assert [(m["id"], m["uri"]) for m in failed] == [(7, "wamp.error.canceled")]
        await heard.wait_for(
            lambda m: m == {"op": "held", "uri": "com.acme.x", "worker": second.node}
        )
        await second.close()
        await heard.wait_for(lambda m: m == {"op": "gone", "worker": second.node})
        assert {"op": "released", "uri": "com.acme.x"} in heard.told
    finally:
        await first.close()
        await second.close()
