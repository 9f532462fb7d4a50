"""Order per connection with topic-level batching, over real sockets: what one loop turn queues
(broadcasts to two topics, a direct EVENT, an exclusion) reaches each client as it was queued."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest

from gos_web_socket.app.router import WampRequest
from gos_web_socket.app.server import Topic, TopicHandler, WampConnection, WampServer
from gos_web_socket.app.testing import CallError, WampTestClient
from tests.support.server import running_server, url_of
from tests.support.waiting import eventually

ROUTES = {
    "news": {"pattern": "news/{id}", "callback": "news"},
    "feed": {"pattern": "feed/{id}", "callback": "feed"},
}


class Channel(TopicHandler):
    """A topic whose clients only listen."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def on_subscribe(
        self, connection: WampConnection, topic: Topic, request: WampRequest
    ) -> None:
        pass


@pytest.fixture
async def server() -> AsyncIterator[WampServer]:
    async with running_server(topics=[Channel("news"), Channel("feed")], routes=ROUTES) as s:
        yield s


async def settle(client: WampTestClient) -> None:
    """Wait for an answer the server sends after everything the client sent before."""
    with contextlib.suppress(CallError):
        await client.call("settle/no-route")


async def joined(server: WampServer, *channels: str) -> tuple[WampTestClient, WampConnection]:
    """A client subscribed to ``channels``, and its connection on the server."""
    client = await WampTestClient.connect(url_of(server))
    for channel in channels:
        client.subscribe(channel)
    await settle(client)
    for channel in channels:
        await eventually(lambda c=channel: c in server.topics, what=f"{channel} is live")
    connection = next(c for c in server.live_connections if c.session_id == client.session_id)
    return client, connection


async def test_one_turn_of_broadcasts_and_direct_sends_arrives_as_queued(
    server: WampServer,
) -> None:
    """news, a direct EVENT, feed, an exclusion, news again: each client sees its own in order."""
    alice, alice_conn = await joined(server, "news/1", "feed/1")
    bob, bob_conn = await joined(server, "news/1")
    news, feed = server.topics["news/1"], server.topics["feed/1"]
    # One loop turn: nothing awaits between these lines.
    news.broadcast(1)
    alice_conn.send_event("news/1", "direct")
    feed.broadcast(2)
    news.broadcast(3, exclude=[alice_conn.session_id])
    news.broadcast(4)
    bob_conn.send_event("news/1", "bob only")
    got_alice = [await alice.next_event() for _ in range(4)]
    got_bob = [await bob.next_event() for _ in range(4)]
    assert got_alice == [1, "direct", 2, 4]
    assert got_bob == [1, 3, 4, "bob only"]
    await settle(alice)
    await settle(bob)  # anything sent twice would have arrived before these answers
    assert alice.unread_events() == [] and bob.unread_events() == []


async def test_lone_pushes_reach_every_subscriber_once_each_in_order(server: WampServer) -> None:
    """Pushes one per loop turn (each a write per subscriber): all arrive once, in order."""
    clients = [await joined(server, "news/2") for _ in range(3)]
    news = server.topics["news/2"]
    for n in range(1, 6):
        assert news.broadcast(n) == 3
        await server.flusher.flushed()  # the turn's end: this push is written on its own
    for client, _ in clients:
        assert [await client.next_event() for _ in range(5)] == [1, 2, 3, 4, 5]
        await settle(client)
        assert client.unread_events() == []
