"""Background push_sync holds for every transport: the mode lives in the base Pusher."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gos_web_socket.app.router import Router
from tests.contract.conftest import ALL, ROOM, Rig, _build
from tests.support.threads import run_threads


@pytest.fixture(params=ALL)
async def rig(request: pytest.FixtureRequest, router: Router) -> AsyncIterator[Rig]:
    """The contract suite's rigs: memory, zmq, amqp, lines (a custom transport) and wamp."""
    async with _build(request, router) as built:
        yield built


async def test_background_pushes_from_four_threads_all_arrive(rig: Rig) -> None:
    """Four threads push 50 each in background mode through a window of 20, flush_sync
    reports nothing, and all 200 reach the topic exactly once."""
    await rig.pusher.push({"warm": 0}, "acme_topic", ROOM)  # connected, bound to this loop
    assert await rig.take(10.0) == {"warm": 0}
    rig.pusher.confirm_mode, rig.pusher.max_in_flight = "background", 20

    def worker(t: int) -> None:
        for i in range(50):
            rig.pusher.push_sync({"t": t, "i": i}, "acme_topic", ROOM, timeout=10)

    await asyncio.to_thread(run_threads, worker, 4)
    await asyncio.to_thread(rig.pusher.flush_sync, 30)
    got = [await rig.take(10.0) for _ in range(200)]
    assert sorted((data["t"], data["i"]) for data in got) == [
        (t, i) for t in range(4) for i in range(50)
    ]
    assert rig.pusher.stats.sent == 201 and rig.pusher.stats.failed == 0
    assert rig.pusher.in_flight == 0
