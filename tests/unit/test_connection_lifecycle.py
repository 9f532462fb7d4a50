"""A connection's lifecycle (open, joined, gone, failed) with a fake server, without a socket."""

from __future__ import annotations

import asyncio
from typing import Any

from gos_web_socket.app.events import CLIENT_CONNECTED, CLIENT_DISCONNECTED, EventDispatcher
from gos_web_socket.app.exceptions import LimitExceeded, PayloadRejected
from gos_web_socket.app.server.client import Client
from gos_web_socket.app.server.jobs import JobQueue
from gos_web_socket.app.server.lifecycle import Lifecycle, close_for
from gos_web_socket.app.stats import ServerStats
from gos_web_socket.settings.models import LimitsSettings


class FakeServer:
    def __init__(self) -> None:
        self.dispatcher = EventDispatcher()
        self.stats = ServerStats()
        self.limits = LimitsSettings()
        self.tasks: list[asyncio.Task[Any]] = []
        self.registered: list[Any] = []
        self.left: list[Any] = []

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.append(task)
        return task

    def register(self, client: Any) -> None:
        self.registered.append(client)

    def unregister(self, client: Any) -> None:
        self.registered.remove(client)

    async def leave(self, client: Any) -> None:
        self.left.append(client)

    async def settle(self) -> None:
        while pending := [task for task in self.tasks if not task.done()]:
            await asyncio.wait(pending)


def lifecycle() -> tuple[Lifecycle, Client, FakeServer]:
    server, client = FakeServer(), Client()
    client._jobs = JobQueue(client.session_id, server.spawn, LimitsSettings(), lambda r, e: None)
    return Lifecycle(server), client, server


async def test_open_join_gone_registers_fires_and_leaves_once() -> None:
    """Opened: registered; joined: client_connected; gone (twice): unregistered, out of its
    topics and client_disconnected, once."""
    life, client, server = lifecycle()
    seen: list[str] = []

    async def connected(event: Any) -> None:
        seen.append("connected")

    async def disconnected(event: Any) -> None:
        seen.append("disconnected")

    server.dispatcher.add_listener(CLIENT_CONNECTED, connected)
    server.dispatcher.add_listener(CLIENT_DISCONNECTED, disconnected)
    life.open(client)
    assert server.registered == [client] and client.opened
    life.join(client)
    await server.settle()
    life.gone(client)
    life.gone(client)
    await server.settle()
    assert server.registered == [] and server.left == [client]
    assert seen == ["connected", "disconnected"]


async def test_gone_before_open_only_marks_it_lost() -> None:
    """A connection lost during its handshake is marked lost and nothing is unregistered."""
    life, client, server = lifecycle()
    life.gone(client)
    await server.settle()
    assert client.lost and not client.closed and server.left == []


async def test_a_failure_is_counted_once_and_gives_its_code() -> None:
    """failed returns the error's code and counts its reason in stats.closed, only the first."""
    life, client, server = lifecycle()
    assert life.failed(client, "flood", LimitExceeded("messages_per_second", "x")) == 1008
    assert life.failed(client, "again", PayloadRejected("invalid_json", "y")) == 1007
    await server.settle()
    assert server.stats.closed == {"messages_per_second": 1}
    assert client.close_reason == "messages_per_second"


def test_close_for_defaults() -> None:
    """No error: 1007 protocol_error; a bug of ours: server_error; a budget: its reason."""
    assert close_for(None) == (1007, "protocol_error")
    assert close_for(KeyError("x")) == (1007, "server_error")
    assert close_for(PayloadRejected("max_message_size", "z")) == (1009, "max_message_size")
