"""Calls between clients on different workers (``server.workers: 2``); a callee's worker dies."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from autobahn.wamp.exception import ApplicationError

from gos_web_socket.app.testing import V2Client
from tests.support.process import ServerProcess, server_env
from tests.support.rabbitmq import RabbitMQNode
from tests.workers.conftest import health, until_ready

ROUTING = Path(__file__).with_name("dealer_routing.yaml")


@pytest.fixture
async def workers() -> AsyncIterator[ServerProcess]:
    async with two_workers(server_env(SERVER__WORKERS=2)) as server:
        yield server


@contextlib.asynccontextmanager
async def two_workers(env: dict[str, str]) -> AsyncIterator[ServerProcess]:
    """A ``server.workers: 2`` server with the dealer routes, started and ready."""
    env["GOS_WEB_SOCKET__SERVER__ROUTER__RESOURCES"] = f'["{ROUTING}"]'
    server = await ServerProcess(env).start()
    try:
        await until_ready(server)
        yield server
    finally:
        await server.stop()


async def connections(server: ServerProcess) -> dict[str, tuple[int, int]]:
    """Worker index → (pid, open connections)."""
    _, body = await health(server)
    return {i: (w["pid"], w["server"]["connections"]) for i, w in body["workers"].items()}


async def on_other_worker(
    server: ServerProcess, taken: str, serializer: str = "json"
) -> tuple[V2Client, list[V2Client]]:
    """A v2 client on the worker that is not ``taken`` (the kernel spreads connections by
    address: open clients until one lands there); the others opened on the way."""
    extra: list[V2Client] = []
    for _ in range(40):
        before = await connections(server)
        client = await V2Client.join(server.ws_url, serializer=serializer)
        after = await connections(server)
        landed = [i for i in after if after[i][1] > before[i][1]]
        if landed and landed[0] != taken:
            return client, extra
        extra.append(client)
    raise AssertionError(f"no client reached the other worker: {after}")


async def leave_all(*clients: Any) -> None:
    for client in clients:
        if client.session.is_attached():
            await client.leave()


async def test_call_reaches_a_callee_on_another_worker(workers: ServerProcess) -> None:
    """A callee on one worker, a caller on the other: RESULT, progressive results and callee
    errors cross; a second REGISTER of the URI on the other worker is refused; binary values
    cannot cross (JSON between workers): the call ends canceled, the sessions stay."""
    callee = await V2Client.join(workers.ws_url, serializer="msgpack")
    (home,) = [i for i, (_, n) in (await connections(workers)).items() if n == 1]

    def refuse() -> None:
        raise ApplicationError("com.acme.error.nope", "nope")

    await callee.session.register(lambda a, b: a + b, "com.acme.add")
    await callee.session.register(refuse, "com.acme.refuse")
    caller, extra = await on_other_worker(workers, home, "msgpack")
    assert await caller.session.call("com.acme.add", 2, 3) == 5
    with pytest.raises(ApplicationError) as binary:
        await caller.session.call("com.acme.add", b"x", b"y")
    assert binary.value.error == "wamp.error.canceled"
    assert await callee.session.call("com.acme.add", b"x", b"y") == b"xy"  # same worker
    with pytest.raises(ApplicationError) as raised:
        await caller.session.call("com.acme.refuse")
    assert (raised.value.error, raised.value.args) == ("com.acme.error.nope", ("nope",))
    with pytest.raises(ApplicationError) as taken:
        await caller.session.register(lambda: 1, "com.acme.add")
    assert taken.value.error == "wamp.error.procedure_already_exists"
    await leave_all(callee, caller, *extra)


async def test_callee_worker_killed_mid_call(workers: ServerProcess) -> None:
    """The callee's worker dies (SIGKILL) mid-call: the caller on the other worker gets
    wamp.error.canceled, and the procedure is gone until a callee registers it again."""
    callee = await V2Client.join(workers.ws_url)
    (home,) = [i for i, (_, n) in (await connections(workers)).items() if n == 1]
    started = asyncio.Event()

    async def slow() -> None:
        started.set()
        await asyncio.sleep(60)

    await callee.session.register(slow, "com.acme.slow")
    caller, extra = await on_other_worker(workers, home)
    pending = asyncio.ensure_future(caller.session.call("com.acme.slow"))
    await asyncio.wait_for(started.wait(), 5)
    os.kill((await connections(workers))[home][0], signal.SIGKILL)
    with pytest.raises(ApplicationError) as raised:
        await asyncio.wait_for(pending, 10)
    assert raised.value.error == "wamp.error.canceled"
    with pytest.raises(ApplicationError) as gone:
        await caller.session.call("com.acme.slow")
    assert gone.value.error == "wamp.error.no_such_procedure"
    await until_ready(workers)
    await caller.session.register(lambda: "again", "com.acme.slow")  # released everywhere
    others = await V2Client.join(workers.ws_url)
    assert await others.session.call("com.acme.slow") == "again"
    await leave_all(caller, others, *extra)


async def call_across(server: ServerProcess, serializer: str) -> None:
    """A callee on one worker, a caller on the other: args and kwargs cross both ways."""
    callee = await V2Client.join(server.ws_url, serializer=serializer)
    (home,) = [i for i, (_, n) in (await connections(server)).items() if n == 1]
    await callee.session.register(lambda *a, **k: [a, k], "com.acme.echo")
    caller, extra = await on_other_worker(server, home, serializer)
    assert await caller.session.call("com.acme.echo", 1, "b", k=[2]) == [[1, "b"], {"k": [2]}]
    await leave_all(callee, caller, *extra)


@pytest.mark.parametrize("serializer", ["json", "msgpack"])
async def test_calls_cross_workers_without_any_pusher(serializer: str) -> None:
    """ZeroMQ and AMQP both off: the parent's relay still carries calls between workers."""
    env = server_env(SERVER__WORKERS=2, PUSHERS__ZMQ__ENABLED="false")
    async with two_workers(env) as server:
        await call_across(server, serializer)


@pytest.mark.parametrize("serializer", ["json", "msgpack"])
async def test_calls_cross_workers_with_amqp(rabbitmq: RabbitMQNode, serializer: str) -> None:
    """AMQP on, ZeroMQ off (the broker carries the pushes, the relay the calls)."""
    env = server_env(rabbitmq, SERVER__WORKERS=2, PUSHERS__ZMQ__ENABLED="false")
    env["GOS_WEB_SOCKET__PUSHERS__AMQP__QUEUE_MODE"] = "per_node"
    async with two_workers(env) as server:
        await call_across(server, serializer)
