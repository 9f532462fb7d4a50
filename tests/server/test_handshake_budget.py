"""server.limits.handshakes_in_progress: handshakes beyond the budget wait, unread and untimed,
and start as the ones in progress end (listener.HandshakeBudget), so a storm converges."""

from __future__ import annotations

import asyncio

import pytest

from gos_web_socket.app.demo import AcmeTopic
from gos_web_socket.app.server import WampServer
from gos_web_socket.app.server.listener import HandshakeBudget
from gos_web_socket.app.testing import WampTestClient
from gos_web_socket.settings import load_settings
from gos_web_socket.settings.errors import ConfigurationError
from tests.support.server import eventually, running_server, url_of


def budget_of(server: WampServer) -> HandshakeBudget:
    budget = server.listener.handshakes
    assert budget is not None
    return budget


async def test_a_held_handshake_starts_when_a_slot_frees() -> None:
    """With both slots taken by silent clients, a third client is held (not answered), and
    opens once the handshake timeout drops the silent ones."""
    limits = {"handshakes_in_progress": 2, "handshake_timeout": 1.0}
    async with running_server(topics=[AcmeTopic()], limits=limits) as server:
        budget = budget_of(server)
        silent = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(2)]
        await eventually(lambda: budget.in_progress == 2, what="both slots taken")
        opening = asyncio.create_task(WampTestClient.connect(url_of(server), timeout=10))
        await eventually(lambda: budget.waiting == 1, what="the third client held")
        assert not opening.done()
        client = await opening
        try:
            assert budget.held_total == 1
            for reader, writer in silent:  # dropped by the handshake timeout, not held forever
                assert await asyncio.wait_for(reader.read(), 5) == b""
                writer.close()
            await eventually(lambda: budget.in_progress == 0 and budget.waiting == 0)
        finally:
            await client.close()


async def test_a_held_client_that_left_is_dropped_when_its_turn_comes() -> None:
    """A held connection is not read, so its client leaving is noticed when its turn comes:
    it then ends at once and the next client opens."""
    limits = {"handshakes_in_progress": 1, "handshake_timeout": 30.0}
    async with running_server(topics=[AcmeTopic()], limits=limits) as server:
        budget = budget_of(server)
        _reader, first = await asyncio.open_connection("127.0.0.1", server.port)
        await eventually(lambda: budget.in_progress == 1)
        _reader2, second = await asyncio.open_connection("127.0.0.1", server.port)
        await eventually(lambda: budget.waiting == 1)
        second.close()
        opening = asyncio.create_task(WampTestClient.connect(url_of(server), timeout=10))
        await eventually(lambda: budget.waiting == 2, what="the next client held too")
        first.close()  # the slot passes to the leaver, which ends, then to the client
        client = await opening
        await client.close()
        await eventually(lambda: budget.in_progress == 0 and budget.waiting == 0)


async def test_a_storm_sixty_times_the_budget_opens_every_client() -> None:
    """300 clients at once against 5 handshake slots and a 2 s handshake timeout: every one
    opens (a held client's timeout only starts with its handshake)."""
    limits = {"handshakes_in_progress": 5, "handshake_timeout": 2.0}
    async with running_server(topics=[AcmeTopic()], limits=limits) as server:
        budget = budget_of(server)
        clients = await asyncio.gather(
            *(WampTestClient.connect(url_of(server), timeout=30) for _ in range(300))
        )
        try:
            assert len(clients) == 300
            assert budget.held_total > 0
            assert budget.in_progress == 0 and budget.waiting == 0
        finally:
            await asyncio.gather(*(client.close() for client in clients))


def test_a_budget_below_one_is_a_config_error_naming_the_key() -> None:
    """handshakes_in_progress: 0 names the key, the value and the bound."""
    with pytest.raises(ConfigurationError) as caught:
        load_settings(server={"limits": {"handshakes_in_progress": 0}})
    assert caught.value.problems == [
        "server.limits.handshakes_in_progress: 0 is not allowed: "
        "Input should be greater than or equal to 1"
    ]
