"""The ZeroMQ pusher and push handler over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import zmq
import zmq.asyncio

from gos_web_socket.app.events import EventDispatcher
from gos_web_socket.app.exceptions import (
    ListenError,
    MessageDecodeError,
    NoRouteMatch,
    PushFailed,
    PushUnsupported,
)
from gos_web_socket.app.router import Router
from gos_web_socket.app.transports.zmq.context import shared_context
from gos_web_socket.app.transports.zmq.handler import ZmqServerPushHandler
from gos_web_socket.app.transports.zmq.pusher import ZmqPusher
from gos_web_socket.app.transports.zmq.wire import endpoint
from gos_web_socket.settings.models import ZmqSettings
from tests.support.threads import run_threads
from tests.zmq.conftest import EventLog, RecordingServer

ROOT = Path(__file__).resolve().parents[2]


def run_python(code: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter from the repository root."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


async def test_async_push_reaches_topic(
    handler: ZmqServerPushHandler,
    zmq_settings: ZmqSettings,
    router: Router,
    server: RecordingServer,
    events: EventLog,
) -> None:
    """An awaited push arrives routed, with its data, from provider zmq."""
    async with ZmqPusher(settings=zmq_settings, router=router) as pusher:
        await pusher.push({"msg": "hi"}, "acme_topic", {"room": "lobby"})
        [(request, data, provider)] = await server.take(1)
    assert (request.route_name, request.matched) == ("acme_topic", "acme/channel/lobby")
    assert request.attributes == {"room": "lobby"}
    assert (data, provider) == ({"msg": "hi"}, "zmq")
    assert len(events.successes) == 1 and not events.failures


async def test_many_async_pushes_keep_order(
    handler: ZmqServerPushHandler,
    zmq_settings: ZmqSettings,
    router: Router,
    server: RecordingServer,
) -> None:
    """Concurrent pushes from one loop share one socket and all arrive in order."""
    async with ZmqPusher(settings=zmq_settings, router=router) as pusher:
        await asyncio.gather(*(pusher.push([i], "acme_topic", {"room": "r"}) for i in range(500)))
        received = await server.take(500)
    assert [data for _, data, _ in received] == [[i] for i in range(500)]


async def test_push_sync_from_eight_threads(
    handler: ZmqServerPushHandler,
    zmq_settings: ZmqSettings,
    router: Router,
    server: RecordingServer,
) -> None:
    """Eight threads calling push_sync at once: every push arrives exactly once."""
    pusher = ZmqPusher(settings=zmq_settings, router=router)

    def worker(n: int) -> None:
        for i in range(50):
            pusher.push_sync({"thread": n, "i": i}, "acme_topic", {"room": f"t{n}"}, timeout=5)

    await asyncio.to_thread(run_threads, worker)
    await asyncio.to_thread(pusher.close_sync)
    received = await server.take(400)
    assert sorted((d["thread"], d["i"]) for _, d, _ in received) == [
        (n, i) for n in range(8) for i in range(50)
    ]
    assert server.pushes.empty()


async def test_non_persistent_pusher_opens_a_socket_per_push(
    handler: ZmqServerPushHandler,
    zmq_settings: ZmqSettings,
    router: Router,
    server: RecordingServer,
) -> None:
    """persistent: false still delivers every push (one connection each)."""
    settings = zmq_settings.model_copy(update={"persistent": False})
    async with ZmqPusher(settings=settings, router=router) as pusher:
        for i in range(3):
            await pusher.push(str(i), "acme_topic", {"room": "x"})
        received = await server.take(3)
    assert [data for _, data, _ in received] == [["0"], ["1"], ["2"]]


async def test_php_1x_frame_is_delivered(
    handler: ZmqServerPushHandler,
    zmq_settings: ZmqSettings,
    server: RecordingServer,
) -> None:
    """A frame byte for byte as GOS 1.x's ZmqPusher wrote it (escaped slashes, bare string)."""
    sock = shared_context().socket(zmq.PUSH)
    sock.connect(endpoint(zmq_settings))
    try:
        await sock.send(b'{"topic":"acme\\/channel\\/42","data":"hi"}')
        [(request, data, provider)] = await server.take(1)
    finally:
        sock.close(linger=0)
    assert (request.matched, request.attributes, data) == ("acme/channel/42", {"room": "42"}, "hi")


async def test_malformed_frames_fail_one_by_one(
    handler: ZmqServerPushHandler,
    zmq_settings: ZmqSettings,
    server: RecordingServer,
    events: EventLog,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Bad frames between good ones: each good one arrives, each bad one fires one push_fail."""
    good = [b'{"topic":"acme/channel/g%d","data":[%d]}' % (i, i) for i in range(6)]
    bad = [
        b"\xff\xfe\x00 not utf-8",
        b"not json at all",
        b"[1, 2, 3]",
        b'{"topic": "acme/channel/x"}',
        b'{"topic": "nowhere/at/all", "data": 1}',
        b'{"topic": "acme/rpc/sum", "data": 1}',
    ]
    sock = shared_context().socket(zmq.PUSH)
    sock.connect(endpoint(zmq_settings))
    try:
        for g, b in zip(good, bad, strict=True):
            await sock.send(g)
            await sock.send(b)
        await sock.send(b'{"topic":"acme/channel/last","data":"end"}')
        received = await server.take(len(good) + 1)
    finally:
        sock.close(linger=0)
    assert [data for _, data, _ in received] == [[i] for i in range(6)] + ["end"]
    assert [event.message.encode("utf-8", "replace") for event in events.failures][1:] == bad[1:]
    assert len(events.failures) == len(bad)
    errors = [type(event.error) for event in events.failures]
    assert errors == [MessageDecodeError] * 4 + [NoRouteMatch, PushUnsupported]
    dropped = [r for r in caplog.records if "could not deliver a body" in r.getMessage()]
    assert len(dropped) == 1 and dropped[0].exc_info is None  # rate-limited, no traceback
    assert len(events.successes) == len(good) + 1
    assert handler.is_consuming


async def test_push_without_handler_fails_within_send_timeout(
    zmq_settings: ZmqSettings,
    router: Router,
) -> None:
    """No peer: push raises PushFailed after send_timeout, not later and never hangs."""
    async with ZmqPusher(settings=zmq_settings, router=router) as pusher:
        started = time.monotonic()
        with pytest.raises(PushFailed) as caught:
            await pusher.push("x", "acme_topic", {"room": "a"})
        elapsed = time.monotonic() - started
    assert zmq_settings.send_timeout - 0.05 <= elapsed < zmq_settings.send_timeout + 0.5
    assert caught.value.transport == "zmq" and isinstance(caught.value.__cause__, zmq.Again)


async def test_push_reaches_a_restarted_handler(
    zmq_settings: ZmqSettings,
    router: Router,
    dispatcher: EventDispatcher,
    server: RecordingServer,
) -> None:
    """The handler closed and bound again: the same pusher gets through again by itself.

    Pushes sent before the pusher notices the drop may be lost (at-most-once), so it keeps
    pushing until one arrives.
    """
    first = ZmqServerPushHandler(settings=zmq_settings, router=router, dispatcher=dispatcher)
    await first.start(server)
    async with ZmqPusher(settings=zmq_settings, router=router) as pusher:
        await pusher.push("one", "acme_topic", {"room": "a"})
        await server.take(1)
        await first.close()
        assert not first.is_consuming
        second = ZmqServerPushHandler(settings=zmq_settings, router=router, dispatcher=dispatcher)
        await second.start(server)

        async def keep_pushing() -> None:
            for i in range(1000):
                await pusher.push([i], "acme_topic", {"room": "a"})
                await asyncio.sleep(0.01)

        pushing = asyncio.create_task(keep_pushing())
        try:
            [(_, data, _)] = await server.take(1, within=5)
        finally:
            pushing.cancel()
            await second.close()
    assert isinstance(data, list) and data[0] < 500


async def test_bind_conflict_is_a_clear_error(
    handler: ZmqServerPushHandler,
    zmq_settings: ZmqSettings,
    router: Router,
    dispatcher: EventDispatcher,
) -> None:
    """A second handler on a taken port fails at start with ListenError naming the setting."""
    other = ZmqServerPushHandler(settings=zmq_settings, router=router, dispatcher=dispatcher)
    taken = (
        f"pushers.zmq: cannot listen on 127.0.0.1:{zmq_settings.port}: Address already in use "
        "(move it with GOS_WEB_SOCKET__PUSHERS__ZMQ__PORT=...)"
    )
    with pytest.raises(ListenError) as error:
        await other.start(RecordingServer())
    assert str(error.value) == taken
    assert not other.is_consuming and handler.is_consuming


def test_close_with_default_linger_when_nothing_listened_exits(unused_port: int) -> None:
    """Default linger -1, no server ever: push fails, close returns, the process exits fast."""
    result = run_python(
        f"""
        import time
        from gos_web_socket.app.exceptions import PushFailed
        from gos_web_socket.app.router import Router, load_routes
        from gos_web_socket.app.transports.zmq.pusher import ZmqPusher
        from gos_web_socket.settings.models import DEFAULT_ROUTING, ZmqSettings

        settings = ZmqSettings(port={unused_port}, send_timeout=0.3)
        assert settings.linger == -1
        pusher = ZmqPusher(settings=settings, router=Router(load_routes(DEFAULT_ROUTING)))
        try:
            pusher.push_sync("x", "acme_topic", {{"room": "a"}})
        except PushFailed:
            print("failed")
        started = time.monotonic()
        pusher.close_sync()
        print("closed in", round(time.monotonic() - started, 3))
        """,
        timeout=10,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "failed" and float(lines[1].split()[-1]) < 1.0


async def test_pushes_of_an_exiting_process_are_flushed(
    handler: ZmqServerPushHandler,
    zmq_settings: ZmqSettings,
    server: RecordingServer,
) -> None:
    """A script that pushes, closes and exits at once still delivers every push."""
    code = f"""
        from gos_web_socket.app.router import Router, load_routes
        from gos_web_socket.app.transports.zmq.pusher import ZmqPusher
        from gos_web_socket.settings.models import DEFAULT_ROUTING, ZmqSettings

        pusher = ZmqPusher(settings=ZmqSettings(port={zmq_settings.port}),
                           router=Router(load_routes(DEFAULT_ROUTING)))
        for i in range(200):
            pusher.push_sync([i], "acme_topic", {{"room": "exit"}})
        pusher.close_sync()
        """
    result = await asyncio.to_thread(run_python, code, 20)
    assert result.returncode == 0, result.stderr
    received = await server.take(200)
    assert [data for _, data, _ in received] == [[i] for i in range(200)]
