"""The WAMP pusher against a WAMP v1 server stub on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from gos_web_socket.app.exceptions import PushFailed
from gos_web_socket.app.router import Router
from gos_web_socket.app.transports.wamp import WampPusher
from gos_web_socket.settings.models import WampSettings
from tests.support.threads import run_threads
from tests.wamp_pusher.conftest import WampStub


async def test_push_sends_gos_publish_frame(
    stub: WampStub, wamp_settings: WampSettings, router: Router
) -> None:
    """PUBLISH [7, channel, json string of the data, [], []], as GOS's WampPusher sends it."""
    async with WampPusher(settings=wamp_settings, router=router) as pusher:
        await pusher.push({"msg": "hi"}, "acme_topic", {"room": "lobby"})
        await pusher.push("hello", "acme_topic", {"room": "lobby"})
        frames = await stub.take(2)
    assert frames == [
        [7, "acme/channel/lobby", '{"msg":"hi"}', [], []],
        [7, "acme/channel/lobby", '["hello"]', [], []],
    ]
    assert json.loads(frames[0][2]) == {"msg": "hi"}
    assert stub.handshakes == [{"origin": "http://127.0.0.1", "protocols": ["wamp"]}]


async def test_one_connection_is_reused_and_closed_with_1000(
    stub: WampStub, wamp_settings: WampSettings, router: Router
) -> None:
    """Many pushes, one handshake; close() ends it with a normal close."""
    pusher = WampPusher(settings=wamp_settings, router=router)
    await asyncio.gather(*(pusher.push([i], "acme_topic", {"room": "r"}) for i in range(100)))
    frames = await stub.take(100)
    await pusher.close()
    assert await asyncio.wait_for(stub.closes.get(), 5) == 1000
    assert len(stub.handshakes) == 1
    assert sorted(json.loads(f[2])[0] for f in frames) == list(range(100))


async def test_push_sync_from_eight_threads(
    stub: WampStub, wamp_settings: WampSettings, router: Router
) -> None:
    """Eight threads calling push_sync at once share one connection; every push arrives."""
    pusher = WampPusher(settings=wamp_settings, router=router)

    def worker(n: int) -> None:
        for i in range(50):
            pusher.push_sync({"t": n, "i": i}, "acme_topic", {"room": f"t{n}"}, timeout=5)

    await asyncio.to_thread(run_threads, worker)
    frames = await stub.take(400)
    await asyncio.to_thread(pusher.close_sync)
    pushed = sorted((d["t"], d["i"]) for d in (json.loads(f[2]) for f in frames))
    assert pushed == [(n, i) for n in range(8) for i in range(50)]
    assert len(stub.handshakes) == 1


async def test_push_without_server_fails_within_timeout(
    wamp_settings: WampSettings, router: Router
) -> None:
    """Nobody listening: PushFailed after about ``timeout``, naming the URL."""
    async with WampPusher(settings=wamp_settings, router=router) as pusher:
        started = time.monotonic()
        with pytest.raises(PushFailed, match=pusher.url) as caught:
            await pusher.push("x", "acme_topic", {"room": "a"})
        elapsed = time.monotonic() - started
    assert wamp_settings.timeout - 0.05 <= elapsed < wamp_settings.timeout + 0.5
    assert caught.value.transport == "wamp"
    assert isinstance(caught.value.__cause__, ConnectionRefusedError)


async def test_push_to_server_without_welcome_fails_within_timeout(
    wamp_settings: WampSettings, router: Router
) -> None:
    """A server that upgrades but never sends WELCOME does not hang the push."""
    silent = WampStub(wamp_settings.port, welcome=False)
    await silent.start()
    try:
        async with WampPusher(settings=wamp_settings, router=router) as pusher:
            started = time.monotonic()
            with pytest.raises(PushFailed):
                await pusher.push("x", "acme_topic", {"room": "a"})
            elapsed = time.monotonic() - started
    finally:
        await silent.stop()
    assert elapsed < wamp_settings.timeout + 0.5
    assert silent.frames.empty()


async def test_pusher_reconnects_after_server_restart(
    stub: WampStub, wamp_settings: WampSettings, router: Router
) -> None:
    """The server goes away and comes back: the next push reconnects and arrives."""
    async with WampPusher(settings=wamp_settings, router=router) as pusher:
        await pusher.push("before", "acme_topic", {"room": "a"})
        assert (await stub.take(1))[0][2] == '["before"]'
        await stub.stop()
        with pytest.raises(PushFailed):
            await pusher.push("while down", "acme_topic", {"room": "a"})
        await stub.start()
        await pusher.push("after", "acme_topic", {"room": "a"})
        assert (await stub.take(1))[0][2] == '["after"]'
    assert len(stub.handshakes) == 2


def test_origin_and_scheme_follow_settings(router: Router) -> None:
    """ssl selects wss; a bare origin (GOS style) is sent as an http(s) origin URL."""
    plain = WampPusher(
        settings=WampSettings(host="ws.example", origin="app.example"), router=router
    )
    secure = WampPusher(settings=WampSettings(host="ws.example", ssl=True), router=router)
    given = WampPusher(settings=WampSettings(origin="https://app.example:8443"), router=router)
    assert (plain.url, plain.origin) == ("ws://ws.example:1337/", "http://app.example")
    assert (secure.url, secure.origin) == ("wss://ws.example:1337/", "https://ws.example")
    assert given.origin == "https://app.example:8443"
