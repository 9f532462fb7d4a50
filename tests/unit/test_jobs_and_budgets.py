"""A connection's job queue and inbound budgets, without a socket."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gos_web_socket.app.exceptions import LimitExceeded, ProtocolError
from gos_web_socket.app.server.budgets import InboundBudgets
from gos_web_socket.app.server.jobs import JobQueue
from gos_web_socket.settings.models import LimitsSettings


class Runner:
    """Spawns jobs' worker as tasks and records what failed."""

    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[Any]] = []
        self.failed: list[tuple[str, Exception]] = []

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.append(task)
        return task

    def fail(self, reason: str, error: Exception) -> None:
        self.failed.append((reason, error))

    async def done(self) -> None:
        while pending := [task for task in self.tasks if not task.done()]:
            await asyncio.wait(pending)


def queue(runner: Runner, **limits: Any) -> JobQueue:
    return JobQueue("1", runner.spawn, LimitsSettings(**limits), runner.fail)


async def test_jobs_run_in_arrival_order_even_when_they_await() -> None:
    """A job that awaits does not let the next one overtake it; one worker at a time."""
    runner, seen = Runner(), []
    jobs = queue(runner)

    async def slow() -> None:
        await asyncio.sleep(0.01)  # the job suspends: what is tested is that none overtakes it
        seen.append("slow")

    async def fast() -> None:
        seen.append("fast")

    jobs.put(slow)
    jobs.put(fast)
    await runner.done()
    assert seen == ["slow", "fast"]
    assert len(runner.tasks) == 1 and jobs.idle


async def test_a_full_queue_raises_max_queued_jobs() -> None:
    """Past max_queued_jobs waiting, put raises LimitExceeded with that reason."""
    runner = Runner()
    jobs = queue(runner, max_queued_jobs=2)

    async def job() -> None:
        pass

    jobs.put(job)
    jobs.put(job)
    with pytest.raises(LimitExceeded) as raised:
        jobs.put(job)
    assert raised.value.reason == "max_queued_jobs"
    await runner.done()


async def test_pending_calls_are_counted_until_answered() -> None:
    """put_call counts a call until it ends; past max_pending_calls it raises."""
    runner = Runner()
    jobs = queue(runner, max_pending_calls=1)
    release = asyncio.Event()

    async def call() -> None:
        await release.wait()

    jobs.put_call(call)
    assert jobs.pending_calls == 1
    with pytest.raises(LimitExceeded) as raised:
        jobs.put_call(call)
    assert raised.value.reason == "max_pending_calls"
    release.set()
    await runner.done()
    assert jobs.pending_calls == 0


async def test_a_failing_job_reports_and_the_next_runs() -> None:
    """A ProtocolError reports its message, another error 'server error: ...'; later jobs run."""
    runner, seen = Runner(), []
    jobs = queue(runner)

    async def bad_client() -> None:
        raise ProtocolError("bad frame")

    async def bug() -> None:
        raise KeyError("x")

    async def good() -> None:
        seen.append("good")

    for job in (bad_client, bug, good):
        jobs.put(job)
    await runner.done()
    assert [reason for reason, _ in runner.failed] == ["bad frame", "server error: 'x'"]
    assert seen == ["good"]


async def test_cleared_jobs_do_not_run() -> None:
    """clear drops the jobs not started yet."""
    runner, seen = Runner(), []
    jobs = queue(runner)

    async def job() -> None:
        seen.append(1)

    jobs.put(job)
    jobs.clear()
    await runner.done()
    assert seen == [] and jobs.idle


@pytest.mark.parametrize(
    ("spend", "limits", "burst", "reason"),
    [
        (InboundBudgets.message, {"messages_per_second": 10, "messages_burst": 3}, 3,
         "messages_per_second"),
        (InboundBudgets.frame, {"frames_per_second": 10, "frames_burst": 4, "messages_burst": 1},
         4, "frames_per_second"),
    ],
)  # fmt: skip
def test_a_budget_allows_its_burst_then_refills(
    spend: Any, limits: dict[str, float], burst: int, reason: str
) -> None:
    """The burst of messages (or of frames: every frame counts) passes at once, the next
    raises the per-second setting (1008); a second later the bucket has refilled."""
    budgets = InboundBudgets(LimitsSettings(**limits))
    for _ in range(burst):
        spend(budgets, 0.0)
    with pytest.raises(LimitExceeded) as raised:
        spend(budgets, 0.0)
    assert raised.value.reason == reason and raised.value.code == 1008
    spend(budgets, 1.0)


def test_ping_budget_is_its_own() -> None:
    """Pings spend their own bucket: a ping flood raises pings_per_second, messages pass."""
    budgets = InboundBudgets(LimitsSettings(pings_per_second=1, pings_burst=1))
    budgets.ping(0.0)
    with pytest.raises(LimitExceeded) as raised:
        budgets.ping(0.0)
    assert raised.value.reason == "pings_per_second"
    budgets.message(0.0)


def test_a_turn_is_spent_after_frames_per_turn_frames() -> None:
    """A turn parses frames_per_turn frames; the next turn starts with a full budget."""
    budgets = InboundBudgets(LimitsSettings(frames_per_turn=3))
    budgets.turn(100)
    for _ in range(3):
        assert not budgets.turn_spent(100)
        budgets.frame(0.0)
    assert budgets.turn_spent(100)
    budgets.turn(100)
    assert not budgets.turn_spent(100)


def test_a_turn_is_spent_after_read_bytes_per_turn_bytes() -> None:
    """A turn parses read_bytes_per_turn bytes of what was buffered when it began."""
    budgets = InboundBudgets(LimitsSettings(read_bytes_per_turn=1024))
    budgets.turn(5000)
    assert not budgets.turn_spent(5000 - 1023)
    assert budgets.turn_spent(5000 - 1024)


def test_a_frame_burst_below_the_message_burst_is_refused_naming_both() -> None:
    """frames_burst under messages_burst would close a burst the message budget allows."""
    with pytest.raises(ValueError, match=r"frames_burst \(10\) must be at least messages_burst"):
        LimitsSettings(frames_burst=10, messages_burst=20)
