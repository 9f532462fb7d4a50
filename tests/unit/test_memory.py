"""The server-wide budget of queued bytes (app/server/memory.py) over real ``Output``s on fake
transports: who is cut off, when pushes wait, that counts follow the transports."""

from __future__ import annotations

import asyncio

from gos_web_socket.app.server.memory import OutgoingBudget
from gos_web_socket.app.server.output import Output
from tests.unit.test_output import OPEN, FakeLink, FakeServices, FakeTransport

KiB = 1024


def outputs(budget: OutgoingBudget, count: int) -> list[tuple[Output, FakeLink]]:
    services = FakeServices(max_outgoing_buffer=budget.client_limit, outgoing=budget)
    made = []
    for n in range(count):
        link = FakeLink(session_id=str(n))
        made.append((Output(link, services, OPEN), link))
    return made


def queue(out: Output, link: FakeLink, unsent: int) -> None:
    """One flush after which the transport holds ``unsent`` bytes."""
    link.transport.unsent = unsent
    out.write(b"x")
    out.flush()


async def test_flushes_report_unsent_bytes_and_a_lost_connection_returns_them() -> None:
    """The total follows each transport's unsent bytes; ``gone`` takes a client's out."""
    budget = OutgoingBudget(1000 * KiB, 100 * KiB, 1.0)
    (a, link_a), (b, link_b) = outputs(budget, 2)
    queue(a, link_a, 30 * KiB)
    queue(b, link_b, 50 * KiB)
    assert budget.total == 80 * KiB
    queue(a, link_a, 10 * KiB)
    assert budget.total == 60 * KiB
    b.gone()
    assert budget.total == 10 * KiB


async def test_over_the_budget_the_client_holding_most_is_cut_off_first() -> None:
    """Over the limit at the end of a turn, the biggest backlog goes; the others stay."""
    budget = OutgoingBudget(1000 * KiB, 100 * KiB, 1.0)
    made = outputs(budget, 4)
    for (out, link), unsent in zip(made, (150, 300, 700, 120), strict=True):
        queue(out, link, unsent * KiB)
    budget.settle()
    assert [bool(link.aborted) for _, link in made] == [False, False, True, False]
    assert budget.total == 570 * KiB and budget.cut_off == 1


async def test_clients_within_their_own_limit_are_not_cut_off_at_the_end_of_a_turn() -> None:
    """Many readers a little behind (each under max_outgoing_buffer) pass the budget
    together: nobody is cut off for it at the end of a turn (pushes wait instead)."""
    budget = OutgoingBudget(1000 * KiB, 100 * KiB, 1.0)
    made = outputs(budget, 12)
    for out, link in made:
        queue(out, link, 90 * KiB)
    budget.settle()
    assert not any(link.aborted for _, link in made)


async def test_a_push_waits_until_readers_drain_below_half_the_budget() -> None:
    """``room`` blocks while the queued bytes pass half the budget and returns once the
    transports drained, without cutting anyone off."""
    budget = OutgoingBudget(1000 * KiB, 400 * KiB, 5.0)
    made = outputs(budget, 2)
    for out, link in made:
        queue(out, link, 300 * KiB)
    looks = Looks(made[0][1], 3)
    waiting = asyncio.create_task(budget.room())
    await asyncio.wait_for(looks.enough.wait(), 1.0)  # room() looked three times: it waits
    assert not waiting.done()
    for _, link in made:
        link.transport.unsent = 100 * KiB  # they read
    await asyncio.wait_for(waiting, 1.0)
    assert not any(link.aborted for _, link in made)


class Looks(FakeTransport):
    """A transport that tells when its unsent bytes were read ``wanted`` times (the budget
    looked at them that often)."""

    def __init__(self, link: FakeLink, wanted: int) -> None:
        super().__init__()
        self.unsent, link.transport = link.transport.unsent, self
        self.wanted, self.enough = wanted, asyncio.Event()

    def get_write_buffer_size(self) -> int:
        self.wanted -= 1
        if self.wanted <= 0:
            self.enough.set()
        return self.unsent


async def drain(link: FakeLink, step: int) -> None:
    """A client that reads: its unsent bytes shrink by ``step`` every 10 ms (its pace)."""
    while link.transport.unsent > step:
        link.transport.unsent -= step
        await asyncio.sleep(0.01)


async def test_a_waiting_push_cuts_off_the_clients_that_read_nothing() -> None:
    """After ``patience`` with a push waiting, every holder whose backlog did not shrink is
    cut off, the bigger before the smaller; the one that reads is kept."""
    budget = OutgoingBudget(1000 * KiB, 400 * KiB, 0.1)
    made = outputs(budget, 3)
    for (out, link), unsent in zip(made, (350, 200, 100), strict=True):
        queue(out, link, unsent * KiB)
    reading = asyncio.create_task(drain(made[0][1], KiB))
    await asyncio.wait_for(budget.room(), 1.0)
    reading.cancel()
    assert [bool(link.aborted) for _, link in made] == [False, True, True]
    assert budget.cut_off == 2


async def test_a_push_stuck_behind_trickling_readers_cuts_the_biggest_after_twice_patience() -> (
    None
):
    """Clients that read a little but never enough: past twice ``patience`` the biggest
    holder is cut off, whoever it is, and the push goes once the rest fit."""
    budget = OutgoingBudget(1000 * KiB, 400 * KiB, 0.1)
    made = outputs(budget, 2)
    for (out, link), unsent in zip(made, (390, 300), strict=True):
        queue(out, link, unsent * KiB)
    trickles = [asyncio.create_task(drain(link, 64)) for _, link in made]
    await asyncio.wait_for(budget.room(), 1.0)
    for task in trickles:
        task.cancel()
    assert [bool(link.aborted) for _, link in made] == [True, False]


async def test_no_budget_never_waits_nor_cuts() -> None:
    """``max_outgoing_total: 0``: no wait, no cut-off, whatever is queued."""
    budget = OutgoingBudget(0, 100 * KiB, 0.1)
    made = outputs(budget, 2)
    for out, link in made:
        queue(out, link, 10_000 * KiB)
    budget.settle()
    await asyncio.wait_for(budget.room(), 0.5)
    assert not any(link.aborted for _, link in made)


async def test_a_turn_ends_early_once_its_broadcasts_could_fill_an_eighth_of_the_budget() -> None:
    """Pushes share a loop turn while their frames fit in an eighth of the budget; each
    client already behind counts a broadcast once more, so backlogs end the turn sooner."""
    budget = OutgoingBudget(800 * KiB, 100 * KiB, 1.0)
    loop = asyncio.get_running_loop()

    async def room_yields() -> bool:
        """Whether ``room`` let the loop turn end (a callback queued before it ran)."""
        ran: list[int] = []
        loop.call_soon(ran.append, 1)
        await budget.room()
        return bool(ran)

    for _ in range(100):
        budget.queued(1 * KiB)  # nobody behind: 100 KiB, an eighth, not over it
    assert not await room_yields()
    budget.queued(1 * KiB)
    assert await room_yields()
    budget.settle()
    (out, link), *_ = outputs(budget, 1)
    queue(out, link, 50 * KiB)  # one client behind: each broadcast counts twice
    for _ in range(50):
        budget.queued(1 * KiB)
    assert not await room_yields()
    budget.queued(1 * KiB)
    assert await room_yields()
