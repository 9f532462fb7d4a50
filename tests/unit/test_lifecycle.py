"""The runtime the container owns: start order, reverse stop, pushes under way finished first."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

import pytest
from dependency_injector import providers

from gos_web_socket.app.events import SERVER_LAUNCHED, EventDispatcher
from gos_web_socket.app.exceptions import ListenError
from gos_web_socket.app.message import Message
from gos_web_socket.app.router import Router
from gos_web_socket.app.transports.pusher import Pusher
from tests.support.rabbitmq import free_port
from tests.support.server import RUNTIME, SERVER, make_container, service


class SlowPusher(Pusher):
    """A custom pusher whose sends wait for the test; records when it was closed."""

    name = "slow"

    def __init__(self, router: Router, log: list[str]) -> None:
        super().__init__(router)
        self.release = asyncio.Event()
        self.sending = asyncio.Event()
        self.log = log

    async def send(self, envelope: Message, context: dict[str, Any]) -> None:
        self.sending.set()
        await self.release.wait()
        self.log.append(f"sent {envelope.topic}")

    async def close(self) -> None:
        self.log.append("pusher closed")


async def test_stop_finishes_pushes_under_way_and_closes_pushers_after_the_server() -> None:
    """SIGTERM's order: the server stops first, then a push already under way completes, then
    the pusher is closed; nothing is closed before the server stopped."""
    log: list[str] = []
    dispatcher = EventDispatcher()
    container = make_container(dispatcher=dispatcher)
    gos = container.gos_web_socket
    router = service(container, "gos_web_socket.router")
    pusher = SlowPusher(router, log)
    gos.pushers.add_kwargs(slow=providers.Object(pusher))
    server = service(container, SERVER)
    dispatcher.add_listener(SERVER_LAUNCHED, lambda event: log.append("server launched"))
    original_stop = server.stop
    server_stopped = asyncio.Event()

    async def stop() -> None:
        await original_stop()
        log.append("server stopped")
        server_stopped.set()

    server.stop = stop
    runtime = service(container, RUNTIME)
    await runtime.start()
    push = asyncio.create_task(pusher.push({"n": 1}, "acme_topic", {"room": "1"}))
    await asyncio.wait_for(pusher.sending.wait(), 5)
    stopping = asyncio.create_task(runtime.stop())
    await asyncio.wait_for(server_stopped.wait(), 5)
    # The stop goes on to the listeners and then waits for the push: it must not finish.
    done, _ = await asyncio.wait({stopping}, timeout=0.3)
    assert not done
    assert log == ["server launched", "server stopped"]  # the pusher waits for its push
    pusher.release.set()
    await asyncio.wait_for(stopping, 5)
    await push
    assert log == ["server launched", "server stopped", "sent acme/channel/1", "pusher closed"]


async def test_a_listener_that_cannot_bind_stops_start_and_leaves_nothing_running() -> None:
    """A taken metrics port: start() raises ListenError naming it, and the WebSocket server
    (which would start after it) never listened."""
    port = free_port()
    taken = await asyncio.start_server(lambda r, w: None, "127.0.0.1", port)
    try:
        container = make_container(metrics={"enabled": True, "port": port})
        runtime = service(container, RUNTIME)
        with pytest.raises(ListenError) as raised:
            await runtime.start()
        expected = (
            f"server.metrics: cannot listen on 127.0.0.1:{port}: Address already in use "
            "(move it with GOS_WEB_SOCKET__SERVER__METRICS__PORT=...)"
        )
        assert str(raised.value) == expected
        assert not service(container, SERVER).accepting
    finally:
        taken.close()
        await taken.wait_closed()


async def test_start_freezes_the_start_up_heap_and_stop_releases_it() -> None:
    """After start() the objects start-up made are out of the collector's scans (gc.freeze),
    objects made later are still collected, and stop() hands the frozen ones back."""
    container = make_container()
    runtime = service(container, RUNTIME)
    await runtime.start()
    try:
        assert gc.get_freeze_count() > 1000
        assert service(container, SERVER) not in gc.get_objects()  # frozen: not scanned
        later: list[object] = []
        later.append(later)  # a cycle made after start-up
        probe = weakref.ref(Cyclic(later))
        del later
        gc.collect()
        assert probe() is None
    finally:
        await runtime.stop()
    assert gc.get_freeze_count() == 0


class Cyclic:
    """A weak-referenceable object inside a reference cycle."""

    def __init__(self, other: list[object]) -> None:
        self.me = self
        self.other = other
