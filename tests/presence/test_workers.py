"""Presence with ``server.workers: 2``: one answer on every worker, and a SIGKILLed worker's
users leave exactly once on the backend queue."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gos_web_socket.app.http_client import get as http_get
from gos_web_socket.app.presence import PresenceEvent
from gos_web_socket.app.presence.consumer import consume
from gos_web_socket.app.presence.http import presence_path
from gos_web_socket.app.testing import WampTestClient
from tests.presence.conftest import config_file, token
from tests.support.process import ServerProcess
from tests.support.rabbitmq import RabbitMQNode
from tests.support.waiting import settles
from tests.workers.conftest import health, until_ready, workers_env

ROOM = "acme/chat/7"
USERS = 16
"""Users u0..u15; the even ones with two tabs."""
ASKED_EVERY = 0.6
"""Seconds between two gos/presence questions: under the 2 a second a connection may make."""


@pytest.fixture
async def pool(rabbitmq: RabbitMQNode, tmp_path: Path) -> AsyncIterator[tuple[ServerProcess, str]]:
    """Two workers with the presence routes, JWT users and the lifecycle queue; the queue."""
    queue = f"presence-{uuid.uuid4().hex[:8]}"
    presence = {"window": 0.2, "queue": {"enabled": True, "queue": queue}}
    config = config_file(tmp_path, presence)
    server = await ServerProcess(workers_env(rabbitmq), "--config", str(config)).start()
    try:
        await until_ready(server)
        yield server, queue
    finally:
        await server.stop()


async def answer(client: WampTestClient) -> dict[str, int]:
    """Connections per user in ROOM, as the client's worker answers gos/presence."""
    found = await client.call("gos/presence", ROOM)
    return {user: entry["connections"] for user, entry in found["users"].items()}


async def test_a_killed_worker_leaves_once(
    pool: tuple[ServerProcess, str], rabbitmq: RabbitMQNode
) -> None:
    """Every worker answers the same members; after SIGKILL of worker 1 its users are gone
    from the answers within the lease and each left ROOM exactly once on the queue."""
    server, queue = pool
    clients: dict[str, list[WampTestClient]] = {}
    for index in range(USERS):
        user = f"u{index}"
        for _ in range(2 if index % 2 == 0 else 1):
            client = await WampTestClient.connect(f"{server.ws_url}?token={token(user)}")
            client.subscribe(ROOM)
            clients.setdefault(user, []).append(client)
    everyone = [c for tabs in clients.values() for c in tabs]
    expected = {user: len(tabs) for user, tabs in clients.items()}
    _, body = await health(server)
    assert all(w["server"]["connections"] > 0 for w in body["workers"].values()), body

    async def all_agree() -> bool:
        answers = [await answer(c) for c in everyone[::3]]
        return all(found == expected for found in answers)

    await settles(
        all_agree, within=15.0, every=ASKED_EVERY, what="every worker answers every member"
    )
    on_victim = body["workers"]["1"]["server"]["connections"]
    os.kill(body["workers"]["1"]["pid"], signal.SIGKILL)

    async def all_cut() -> bool:
        return len([c for c in everyone if not c.is_open]) == on_victim

    await settles(all_cut, within=10.0, every=ASKED_EVERY, what="the kill cut the victim's clients")
    alive = {u: [c for c in tabs if c.is_open] for u, tabs in clients.items()}
    remaining = {u: len(tabs) for u, tabs in alive.items() if tabs}
    gone = sorted(u for u, tabs in alive.items() if not tabs)
    survivor = next(c for tabs in alive.values() for c in tabs)

    async def members_gone() -> bool:
        return await answer(survivor) == remaining

    await settles(
        members_gone,
        within=15.0,
        every=ASKED_EVERY,
        what="the victim's members gone from the survivor's answer",
    )
    path = presence_path(ROOM)
    status, body = await http_get("127.0.0.1", server.metrics_port, path, 5.0)
    users = json.loads(body)["users"]
    assert status == 200 and {u: e["connections"] for u, e in users.items()} == remaining
    events = await read_for(rabbitmq.url, queue, 5.0)
    left = Counter(e.user_id for e in events if e.kind.endswith(".left") and e.channel == ROOM)
    assert gone, "some user had every tab on the killed worker"
    assert {user: left[user] for user in gone} == dict.fromkeys(gone, 1)
    assert not set(left) - set(gone), f"a user still here left: {left}"
    for client in everyone:
        await client.close()


async def read_for(url: str, queue: str, quiet: float) -> list[PresenceEvent]:
    """Every event of ``queue`` until none came for ``quiet`` seconds."""
    events: list[PresenceEvent] = []
    stop, arrived = asyncio.Event(), asyncio.Event()

    def take(event: PresenceEvent) -> None:
        events.append(event)
        arrived.set()

    async def watch() -> None:
        while True:
            try:
                await asyncio.wait_for(arrived.wait(), quiet)
            except TimeoutError:
                stop.set()
                return
            arrived.clear()

    await asyncio.gather(consume(url, take, queue, stop), watch())
    return events
