"""autobahn-js (npm ``autobahn``, WAMP v2) in Node against the server: join, push, publish, call."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from autobahn.wamp.types import CallOptions

from gos_web_socket.app.demo import AcmeRpc, AcmeTopic
from gos_web_socket.app.events import EventDispatcher
from gos_web_socket.app.message import Message
from gos_web_socket.app.router import Router, load_routes
from gos_web_socket.app.server import WampServer
from gos_web_socket.app.transports.memory import InMemoryServerPushHandler
from gos_web_socket.settings.models import DEFAULT_ROUTING
from tests.support.process import server_env
from tests.support.server import running_server, url_of
from tests.wamp2.test_dealer_workers import connections, leave_all, on_other_worker, two_workers

HERE = Path(__file__).resolve().parent
AUTOBAHN_JS = HERE.parent / "interop" / "node_modules" / "autobahn"
pytestmark = pytest.mark.npm
CHANNEL = "acme/channel/lobby"


@pytest.fixture
async def server() -> AsyncIterator[WampServer]:
    """The demo server with an in-memory push handler to push from the test."""
    dispatcher = EventDispatcher()
    memory = InMemoryServerPushHandler(Router(load_routes(DEFAULT_ROUTING)), dispatcher)
    async with running_server(
        topics=[AcmeTopic()], rpcs=[AcmeRpc()], push_handlers={"memory": memory}
    ) as server:
        yield server


def node_command(script: str = "autobahn_node.js") -> list[str]:
    """Node with a global WebSocket (built in from Node 22, behind a flag in Node 20)."""
    if not AUTOBAHN_JS.is_dir():
        pytest.fail("tests/interop/node_modules/autobahn is missing: run make test (npm install)")
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed; the interop tests need Node 20 or later")
    probe = [node, "-e", "process.exit(typeof WebSocket === 'function' ? 0 : 1)"]
    flags = (
        [] if subprocess.run(probe, check=False).returncode == 0 else ["--experimental-websocket"]
    )
    return [node, *flags, str(HERE / script)]


@contextlib.asynccontextmanager
async def node_script(
    script: str, server: WampServer, serializer: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``script`` running against ``server``; killed on the way out if it has not ended."""
    process = await asyncio.create_subprocess_exec(
        *node_command(script),
        url_of(server),
        "realm1",
        serializer,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def next_step(process: asyncio.subprocess.Process, step: str) -> dict[str, Any]:
    """The next JSON line the script prints; it must be ``step``."""
    assert process.stdout is not None
    async with asyncio.timeout(15):
        line = await process.stdout.readline()
    assert line, f"the node script ended before {step!r}"
    report: dict[str, Any] = json.loads(line)
    assert report["step"] == step, report
    return report


@pytest.mark.parametrize("serializer", ["json", "msgpack"])
async def test_autobahn_js_in_node(server: WampServer, serializer: str) -> None:
    """autobahn-js joins, gets a push, publishes acknowledged, calls acme/rpc/sum, leaves."""
    async with node_script("autobahn_node.js", server, serializer) as process:
        subscribed = await next_step(process, "subscribed")
        assert subscribed["realm"] == "realm1"
        assert subscribed["protocol"] == f"wamp.2.{serializer}"
        assert str(subscribed["session"]) in {c.session_id for c in server.live_connections}
        memory = server.push_handlers["memory"]
        assert isinstance(memory, InMemoryServerPushHandler)
        await memory.feed(Message(CHANNEL, {"msg": "pushed"}).encode())
        assert (await next_step(process, "event"))["args"] == [{"msg": "pushed"}]
        published = await next_step(process, "published")
        assert 1 <= published["publication"] <= 2**53
        assert published["own"]["args"] == [{"from": "node"}]
        called = await next_step(process, "called")
        assert called["sum"] == 5
        assert called["callError"]["error"] == "wamp.error.invalid_argument"
        assert called["callError"]["args"] == ["sum takes numbers only"]
        assert (await next_step(process, "closed"))["reason"] == "closed"
        async with asyncio.timeout(10):
            assert await process.wait() == 0


@pytest.mark.parametrize("serializer", ["json", "msgpack"])
async def test_autobahn_js_callee_and_caller(serializer: str) -> None:
    """autobahn-js registers and calls through the dealer: arguments and keyword arguments,
    progressive results, a callee's error, and a cancel that leaves no call in flight."""
    routes = {
        "procedures": {"pattern": "com.acme.{name}", "options": {"auth": {"register": "anyone"}}}
    }
    async with (
        running_server(routes=routes) as dealer_server,
        node_script("autobahn_node_dealer.js", dealer_server, serializer) as process,
    ):
        await next_step(process, "registered")
        called = await next_step(process, "called")
        assert (called["args"], called["kwargs"]) == ([5], {"unit": "cm"})
        progressed = await next_step(process, "progressed")
        assert (progressed["progress"], progressed["result"]) == ([0, 1, 2], 3)
        refused = await next_step(process, "refused")
        assert refused == {
            "step": "refused",
            "error": "com.acme.error.nope",
            "args": ["nope"],
            "kwargs": {"why": "locked"},
        }
        assert (await next_step(process, "canceled"))["canceled"] == "Cancelled"
        await next_step(process, "closed")
        assert dealer_server.broker.dealer.invocations.in_flight == 0
        async with asyncio.timeout(10):
            assert await process.wait() == 0


@pytest.mark.parametrize("serializer", ["json", "msgpack"])
async def test_autobahn_js_callee_on_another_worker(serializer: str) -> None:
    """workers: 2: an autobahn-js callee on one worker answers an autobahn-python caller on the
    other, arguments, keyword arguments and progressive results crossing the parent's relay."""
    env = server_env(SERVER__WORKERS=2)
    async with two_workers(env) as server:
        process = await asyncio.create_subprocess_exec(
            *node_command("autobahn_node_callee.js"),
            server.ws_url,
            "realm1",
            serializer,
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            await next_step(process, "registered")
            (home,) = [i for i, (_, n) in (await connections(server)).items() if n == 1]
            caller, extra = await on_other_worker(server, home, serializer)
            progress: list[Any] = []
            result = await caller.session.call(
                "com.acme.js_add",
                2,
                3,
                unit="cm",
                options=CallOptions(on_progress=lambda i: progress.append(i)),
            )
            assert (result.results, result.kwresults, progress) == ((5,), {"unit": "cm"}, [0, 1])
            assert (await next_step(process, "invoked"))["args"] == [2, 3]
            await leave_all(caller, *extra)
        finally:
            process.kill()
            await process.wait()
