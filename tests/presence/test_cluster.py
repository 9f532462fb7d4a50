"""The issue's scenario at a small size: two nodes x ``workers: 2`` on one RabbitMQ, a fleet of
users with 1-3 tabs (in a process of its own) on one presence channel."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gos_web_socket.app.http_client import get as http_get
from gos_web_socket.app.presence.http import presence_path
from gos_web_socket.app.testing import WampTestClient
from tests.presence.conftest import config_file, shared_presence, token
from tests.presence.test_workers import ASKED_EVERY, read_for
from tests.support.process import ROOT, ServerProcess
from tests.support.rabbitmq import RabbitMQNode
from tests.support.waiting import settles
from tests.workers.conftest import health, until_ready, workers_env

ROOM = "acme/chat/7"
USERS = 1000
"""Users u0..u999 with 1, 2 or 3 tabs: 1,999 connections over four workers of two nodes."""
LEASE = 5.0


@pytest.fixture
async def cluster(
    rabbitmq: RabbitMQNode, tmp_path: Path
) -> AsyncIterator[tuple[list[ServerProcess], str]]:
    """Two nodes of two workers each, presence shared over the broker; the events queue."""
    presence, queue = shared_presence(0.5, LEASE)
    config = config_file(tmp_path, presence)
    nodes = [
        await ServerProcess(workers_env(rabbitmq), "--config", str(config)).start()
        for _ in range(2)
    ]
    try:
        for node in nodes:
            await until_ready(node, 60.0)
        yield nodes, queue
    finally:
        for node in nodes:
            await node.stop()


class Fleet:
    """tests/presence/fleet.py as a child process."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, plan: list[tuple[str, str]]) -> Fleet:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.presence.fleet",
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 24,
        )  # fmt: skip
        fleet = cls(process)
        fleet.send({"plan": plan, "channel": ROOM})
        ready = await fleet.line(180.0)
        assert ready["ready"] == len(plan), ready
        return fleet

    def send(self, order: Any) -> None:
        assert self.process.stdin is not None
        text = order if isinstance(order, str) else json.dumps(order)
        self.process.stdin.write(text.encode() + b"\n")

    async def line(self, within: float = 30.0) -> dict[str, Any]:
        assert self.process.stdout is not None
        answer: dict[str, Any] = json.loads(
            await asyncio.wait_for(self.process.stdout.readline(), within)
        )
        return answer

    async def open_tabs(self) -> dict[str, int]:
        self.send("report")
        tabs: dict[str, int] = (await self.line())["open"]
        return tabs

    async def close(self) -> None:
        self.send("close")
        await asyncio.wait_for(self.process.wait(), 60.0)


async def users_of(client: WampTestClient) -> dict[str, int]:
    found = await client.call("gos/presence", ROOM, timeout=30.0)
    return {user: entry["connections"] for user, entry in found["users"].items()}


@pytest.mark.slow
async def test_two_nodes_of_two_workers_agree_and_a_killed_worker_leaves_once(
    cluster: tuple[list[ServerProcess], str], rabbitmq: RabbitMQNode
) -> None:
    """Every node and worker answers the same members and user count; after SIGKILL of one
    worker its members are gone from every answer within the lease, and each of its users
    who has no other tab left ROOM exactly once on the backend queue."""
    nodes, queue = cluster
    plan = [
        (f"{nodes[(user + tab) % 2].ws_url}?token={token(f'u{user}')}", f"u{user}")
        for user in range(USERS)
        for tab in range(user % 3 + 1)
    ]
    expected = Counter(user for _, user in plan)
    fleet = await Fleet.start(plan)
    askers = [await WampTestClient.connect(node.ws_url) for node in nodes for _ in range(3)]
    try:

        async def everyone_agrees() -> bool:
            answers = [await users_of(asker) for asker in askers]
            return all(found == expected for found in answers)

        await settles(
            everyone_agrees,
            within=60.0,
            every=ASKED_EVERY,
            what="every node and worker answers the whole fleet",
        )
        for node in nodes:
            status, body = await http_get("127.0.0.1", node.metrics_port, presence_path(ROOM), 10)
            assert status == 200 and json.loads(body)["num_users"] == USERS
        _, body = await health(nodes[1])
        victim = body["workers"]["1"]
        assert victim["server"]["connections"] > 0
        os.kill(victim["pid"], signal.SIGKILL)
        killed = asyncio.get_running_loop().time()

        async def victims_cut() -> bool:
            tabs = await fleet.open_tabs()
            cut = sum(expected.values()) - sum(tabs.values())
            cut += sum(1 for asker in askers if not asker.is_open)  # askers there too
            return cut >= victim["server"]["connections"]

        await settles(
            victims_cut,
            within=20.0,
            every=ASKED_EVERY,
            what="the fleet saw the victim's connections close",
        )
        remaining = await fleet.open_tabs()
        remaining = {user: n for user, n in remaining.items() if n}
        gone = set(expected) - set(remaining)
        live = [a for a in askers if a.is_open]

        async def victim_members_gone() -> bool:
            answers = [await users_of(asker) for asker in live]
            return all(found == remaining for found in answers)

        await settles(
            victim_members_gone,
            within=LEASE * 4,
            every=ASKED_EVERY,
            what="the victim's members gone everywhere",
        )
        took = asyncio.get_running_loop().time() - killed
        assert took <= 15.0, f"members of the killed worker still listed after {took:.1f} s"
        bound = LEASE + LEASE / 3 + 4.0  # the lease, one heartbeat period, a loaded machine
        assert took <= bound, f"listed {took:.1f} s after the kill (lease bound {bound} s)"
        events = await read_for(rabbitmq.url, queue, 5.0)
        left = Counter(e.user_id for e in events if e.kind.endswith(".left") and e.channel == ROOM)
        assert gone, "some user had every tab on the killed worker"
        assert {user: left[user] for user in gone} == dict.fromkeys(gone, 1)
        assert not set(left) - gone, f"a user still here left: {set(left) - gone}"
    finally:
        await fleet.close()
        for asker in askers:
            await asker.close()
