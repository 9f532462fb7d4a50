"""``TurnGate``: housekeeping goes on a few callers per loop turn, in order, with the loop's other
work between the slices."""

from __future__ import annotations

import asyncio

from gos_web_socket.app.server.turn_gate import TurnGate
from tests.support.waiting import eventually


async def test_callers_pass_per_turn_in_order_with_other_work_between() -> None:
    """Ten callers at three a turn: all pass in arrival order, and a callback scheduled after
    they queued runs before the last of them (the loop is not held until all have passed)."""
    gate = TurnGate(3)
    passed: list[int] = []
    marks: list[str] = []

    async def caller(i: int) -> None:
        await gate.enter()
        passed.append(i)

    tasks = [asyncio.create_task(caller(i)) for i in range(10)]
    await asyncio.sleep(0)  # every caller has entered or queued
    asyncio.get_running_loop().call_soon(lambda: marks.append(f"other work after {len(passed)}"))
    await asyncio.gather(*tasks)
    assert passed == list(range(10))
    assert marks and marks[0] != "other work after 10"
    assert gate.waiting == 0


async def test_a_caller_passes_at_once_when_nobody_waits() -> None:
    """Below the limit, ``enter`` does not give up the turn (an ordinary close is not delayed)."""
    gate = TurnGate(2)
    order: list[str] = []

    async def caller() -> None:
        await gate.enter()
        order.append("passed")

    task = asyncio.create_task(caller())
    asyncio.get_running_loop().call_soon(lambda: order.append("next callback"))
    await task
    assert order == ["passed", "next callback"]


async def test_a_cancelled_waiter_gives_its_place_up() -> None:
    """A waiter cancelled (its connection's jobs dropped) does not take a pass from the others."""
    gate = TurnGate(1)
    passed: list[int] = []

    async def caller(i: int) -> None:
        await gate.enter()
        passed.append(i)

    tasks = [asyncio.create_task(caller(i)) for i in range(4)]
    await asyncio.sleep(0)
    tasks[1].cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert passed == [0, 2, 3]


async def test_callbacks_share_the_turns_with_callers_in_arrival_order() -> None:
    """``call`` runs a callback at once while the turn has room, then queues it with the
    awaiting callers: seven at two a turn run in arrival order, other work between the slices,
    and one that raises is logged without stopping the ones behind it."""
    gate = TurnGate(2)
    ran: list[int] = []
    marks: list[int] = []

    def callback(i: int) -> None:
        if i == 4:
            raise RuntimeError("a broken teardown")
        ran.append(i)

    async def caller(i: int) -> None:
        await gate.enter()
        ran.append(i)

    assert gate.call(callback, 0) and gate.call(callback, 1)  # ran at once
    assert ran == [0, 1]  # the turn had room for two
    assert not gate.call(callback, 2)  # queued
    task = asyncio.create_task(caller(3))
    await asyncio.sleep(0)  # the caller queued behind callback 2
    for i in (4, 5, 6):
        gate.call(callback, i)
    asyncio.get_running_loop().call_soon(lambda: marks.append(len(ran)))
    await task
    await eventually(lambda: len(ran) == 6, 2.0, "the callbacks behind the caller")
    assert ran == [0, 1, 2, 3, 5, 6]
    assert marks and marks[0] < 6
    assert gate.waiting == 0
