"""server.limits.handshakes_in_progress: with that many handshakes in progress the server stops
accepting (listener.Acceptor); later clients wait in the accept queue, untimed, and are
accepted as handshakes end, so a storm converges."""

from __future__ import annotations

import asyncio
import time

import pytest

from gos_web_socket.app.demo import AcmeTopic
from gos_web_socket.app.server import WampServer
from gos_web_socket.app.server.gate import HttpGate
from gos_web_socket.app.server.listener import HandshakeBudget
from gos_web_socket.app.testing import WampTestClient
from gos_web_socket.settings import load_settings
from gos_web_socket.settings.errors import ConfigurationError
from tests.support.raw_ws import php_upgrade_request
from tests.support.server import running_server, url_of
from tests.support.waiting import eventually


def budget_of(server: WampServer) -> HandshakeBudget:
    budget = server.listener.handshakes
    assert budget is not None
    return budget


async def test_a_client_beyond_the_budget_is_accepted_when_a_handshake_ends() -> None:
    """With both slots taken by silent clients, a third client is not accepted (the budget
    filled up), and opens once one silent client leaves."""
    limits = {"handshakes_in_progress": 2, "handshake_timeout": 30.0}
    async with running_server(topics=[AcmeTopic()], limits=limits) as server:
        budget = budget_of(server)
        silent = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(2)]
        await eventually(lambda: budget.in_progress == 2, what="both slots taken")
        opening = asyncio.create_task(WampTestClient.connect(url_of(server), timeout=10))
        await eventually(lambda: budget.full_total >= 1, what="accepting stopped")
        assert not opening.done() and budget.in_progress == 2
        silent[0][1].close()
        client = await opening
        try:
            await eventually(lambda: budget.in_progress == 1, what="only the silent one left")
        finally:
            await client.close()
            silent[1][1].close()
        await eventually(lambda: budget.in_progress == 0)


async def test_a_silent_client_is_still_dropped_by_the_handshake_timeout() -> None:
    """A client that sends nothing holds its slot only until the handshake timeout."""
    limits = {"handshakes_in_progress": 1, "handshake_timeout": 1.0}
    async with running_server(topics=[AcmeTopic()], limits=limits) as server:
        budget = budget_of(server)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        await eventually(lambda: budget.in_progress == 1)
        opening = asyncio.create_task(WampTestClient.connect(url_of(server), timeout=10))
        assert await asyncio.wait_for(reader.read(), 5) == b""  # dropped
        writer.close()
        client = await opening  # then the waiting client is accepted
        await client.close()


async def test_a_storm_sixty_times_the_budget_opens_every_client() -> None:
    """300 clients at once against 5 handshake slots and a 2 s handshake timeout: every one
    opens, and no more than 5 handshakes were ever in progress."""
    limits = {"handshakes_in_progress": 5, "handshake_timeout": 2.0}
    async with running_server(topics=[AcmeTopic()], limits=limits) as server:
        budget = budget_of(server)
        most = 0

        async def sample() -> None:  # the most handshakes in progress, seen every loop turn
            nonlocal most
            while True:
                most = max(most, budget.in_progress)
                await asyncio.sleep(0)

        sampler = asyncio.create_task(sample())
        clients: list[WampTestClient] = []
        try:
            clients = await asyncio.gather(
                *(WampTestClient.connect(url_of(server), timeout=30) for _ in range(300))
            )
            assert len(clients) == 300
            assert budget.full_total > 0
            assert 0 < most <= 5
        finally:
            sampler.cancel()
            await asyncio.gather(*(client.close() for client in clients))
        await eventually(lambda: budget.in_progress == 0)


async def test_requests_read_in_one_turn_are_answered_a_few_a_turn() -> None:
    """Twenty upgrade requests that arrive together open at most ``handshakes_per_turn`` (4)
    sessions per loop turn, and all twenty open."""
    async with running_server(topics=[AcmeTopic()], limits={"handshakes_per_turn": 4}) as server:
        budget = budget_of(server)
        pairs = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(20)]
        await eventually(lambda: budget.in_progress == 20, what="all twenty accepted")
        loop = asyncio.get_running_loop()
        counts: list[int] = []

        def sample() -> None:  # the sessions open, once every loop turn, until all are
            counts.append(server.connections)
            if counts[-1] < 20:
                loop.call_soon(sample)

        for _, writer in pairs:  # all written in this turn: the server reads them together
            writer.write(php_upgrade_request("127.0.0.1", server.port))
        sample()
        heads = await asyncio.gather(*(reader.readuntil(b"\r\n\r\n") for reader, _ in pairs))
        await eventually(lambda: counts[-1] == 20, what="the sampler saw all twenty open")
        for _, writer in pairs:
            writer.close()
        assert all(head.startswith(b"HTTP/1.1 101") for head in heads)
        steps = [after - before for before, after in zip(counts, counts[1:], strict=False)]
        assert max(steps) <= 4, steps
        assert sum(1 for step in steps if step) >= 5, steps


async def test_a_request_that_fails_or_leaves_while_queued_costs_only_itself(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """With one request worked on a turn: a queued request whose gate check raises is
    dropped and logged, queued clients that reset meanwhile are passed over, and the first
    client opens; every handshake slot is free afterwards."""
    check = HttpGate.check

    def failing(self: HttpGate, data: bytes, peer: str, session_id: str) -> object:
        if b"X-Boom" in data:
            raise RuntimeError("a bug in the gate")
        return check(self, data, peer, session_id)

    monkeypatch.setattr(HttpGate, "check", failing)
    async with running_server(topics=[AcmeTopic()], limits={"handshakes_per_turn": 1}) as server:
        budget = budget_of(server)
        pairs = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(5)]
        await eventually(lambda: budget.in_progress == 5, what="all five accepted")
        request = php_upgrade_request("127.0.0.1", server.port)
        boom = request.replace(b"\r\n\r\n", b"\r\nX-Boom: 1\r\n\r\n")
        for i, (_, writer) in enumerate(pairs):
            writer.write(boom if i == 1 else request)
        for _, writer in pairs[2:]:  # gone before their turn
            writer.transport.abort()
        opened = await asyncio.wait_for(pairs[0][0].readuntil(b"\r\n\r\n"), 5)
        assert opened.startswith(b"HTTP/1.1 101")
        # dropped at once, not by the handshake timeout (5 s)
        assert await asyncio.wait_for(pairs[1][0].read(), 2) == b""
        await eventually(lambda: budget.in_progress == 0, what="every slot free")
        assert server.connections == 1
        assert "its request failed" in caplog.text
        pairs[0][1].close()
        pairs[1][1].close()


def test_a_budget_below_one_is_a_config_error_naming_the_key() -> None:
    """handshakes_in_progress: 0 names the key, the value and the bound."""
    with pytest.raises(ConfigurationError) as caught:
        load_settings(server={"limits": {"handshakes_in_progress": 0}})
    assert caught.value.problems == [
        "server.limits.handshakes_in_progress: 0 is not allowed: "
        "Input should be greater than or equal to 1"
    ]


async def test_a_lagging_loop_cuts_the_budget_and_a_prompt_one_restores_it() -> None:
    """While a handshake is in progress, a loop held for 0.8 s (late by more than
    handshake_lag) admits fewer handshakes at once; prompt again, it admits them all."""
    limits = {"handshakes_in_progress": 64, "handshake_timeout": 4.0, "handshake_lag": 0.5}
    async with running_server(topics=[AcmeTopic()], limits=limits) as server:
        budget = budget_of(server)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        await eventually(lambda: budget.in_progress == 1, what="the silent client accepted")
        assert budget.allowed == 64
        time.sleep(0.8)  # noqa: ASYNC251  # the loop (the server's too) is held: its probe wakes late
        await eventually(lambda: budget.cut_total >= 1, what="the budget cut")
        assert budget.allowed < 64
        writer.close()
        await eventually(lambda: budget.allowed == 64, within=10, what="the budget restored")
        assert budget.in_progress == 0


def test_a_late_loop_cuts_the_budget_by_its_lateness_and_a_prompt_one_adds_the_floor() -> None:
    """Late by more than ``late``: cut to late / lag of itself (at most half, never under
    FLOOR); prompt (under a quarter of that): FLOOR more, never over the limit; in between:
    unchanged."""
    budget = HandshakeBudget(256, late=1.0)
    budget.watch(1.5)
    assert (budget.allowed, budget.cut_total) == (128, 1)  # at most half
    budget.watch(0.5)  # neither late nor prompt
    assert budget.allowed == 128
    budget.watch(4.0)
    assert (budget.allowed, budget.cut_total) == (32, 2)  # late four times over: a quarter
    for _ in range(3):
        budget.watch(2.0)
    assert budget.allowed == HandshakeBudget.FLOOR == 16
    assert budget.cut_total == 3  # 16, then no cut below the floor
    budget.watch(0.1)
    assert budget.allowed == 32
    for _ in range(100):
        budget.watch(0.0)
    assert budget.allowed == 256
