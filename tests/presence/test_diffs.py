"""Join and leave to clients that watch a presence channel: debounced per window, net, by user."""

from __future__ import annotations

import asyncio

import pytest

from gos_web_socket.app.testing import CallError, WampTestClient
from tests.presence.conftest import Presenced, token
from tests.support.server import url_of
from tests.support.waiting import eventually

ROOM = "acme/chat/7"
WATCH = "gos/presence/" + ROOM


async def test_watcher_gets_state_then_net_diffs(presenced: Presenced) -> None:
    """A watcher gets who is there, then one diff per window: a second tab is no join, a quick
    join-and-leave is nothing."""
    here = await presenced.client("41")
    here.subscribe(ROOM)
    await eventually(lambda: presenced.presence.counts(ROOM) == (1, 1))
    await eventually(lambda: presenced.presence.diffs.pending == 0, what="41's join sent")
    watcher = await presenced.client("40")
    watcher.subscribe(WATCH)
    first = await watcher.next_event(WATCH)
    assert first["channel"] == ROOM and list(first["state"]["users"]) == ["41"]
    tabs = [await presenced.client("42") for _ in range(2)]
    passing = await presenced.client("43")
    for client in (*tabs, passing):
        client.subscribe(ROOM)
    await eventually(lambda: presenced.presence.counts(ROOM) == (4, 3))
    passing.unsubscribe(ROOM)
    diff = await watcher.next_event(WATCH)
    assert list(diff["joins"]) == ["42"] and diff["leaves"] == []
    assert diff["num_users"] == 2
    for tab in tabs:
        await tab.close()
    diff = await watcher.next_event(WATCH)
    assert diff["joins"] == {} and diff["leaves"] == ["42"]
    assert watcher.unread_events() == []


async def test_a_burst_is_one_frame_per_window(presenced: Presenced) -> None:
    """Sixty users joining at once reach a watcher in at most two diffs, not sixty frames."""
    watcher = await presenced.client("40")
    watcher.subscribe(WATCH)
    await watcher.next_event(WATCH)
    clients = await asyncio.gather(*(presenced.client(str(100 + i)) for i in range(60)))
    for client in clients:
        client.subscribe(ROOM)
    seen: set[str] = set()
    frames = 0
    while len(seen) < 60:
        diff = await watcher.next_event(WATCH)
        frames += 1
        seen |= set(diff["joins"])
    assert frames <= 2


async def test_watching_follows_the_subscribe_rule(presenced: Presenced) -> None:
    """Watching a channel one may not subscribe to, or one without presence, is refused."""
    client = await presenced.client("42")
    client.subscribe("gos/presence/acme/private/1")
    refused = await client.next_topic_error("gos/presence/acme/private/1")
    assert "not authorized" in refused.desc
    client.subscribe("gos/presence/acme/plain/1")
    off = await client.next_topic_error("gos/presence/acme/plain/1")
    assert "presence: true" in off.desc
    assert isinstance(refused, CallError) and client.is_open
    url = f"{url_of(presenced.server)}?token={token('40', roles=['admin'])}"
    allowed = await WampTestClient.connect(url)  # the private rule's user: a member there
    presenced.clients.append(allowed)
    allowed.subscribe("acme/private/1")
    await eventually(lambda: presenced.presence.counts("acme/private/1") == (1, 1))
    assert presenced.presence.counts("acme/private/1") == (1, 1)


@pytest.mark.parametrize("leave", ["unsubscribe", "close"])
async def test_watchers_are_not_members(presenced: Presenced, leave: str) -> None:
    """Watching is not being in the channel, and leaving a watch runs no hook and no leave."""
    watcher = await presenced.client("40")
    watcher.subscribe(WATCH)
    await watcher.next_event(WATCH)
    assert presenced.presence.counts(ROOM) == (0, 0)
    elsewhere = "acme/chat/8"  # 40 is a member there: its leave would show
    watcher.subscribe(elsewhere)
    await eventually(lambda: presenced.presence.counts(elsewhere) == (1, 1))
    if leave == "close":
        await watcher.close()
        await eventually(lambda: presenced.recorder.of("left") == [("40", elsewhere)])
        await eventually(lambda: presenced.chat.unsubscribed == [elsewhere])
    else:
        watcher.unsubscribe(WATCH)
    await eventually(lambda: WATCH not in presenced.server.topics)
    assert presenced.recorder.of("left") == ([("40", elsewhere)] if leave == "close" else [])
    assert presenced.chat.unsubscribed == ([elsewhere] if leave == "close" else [])
    assert presenced.presence.counts(elsewhere) == ((0, 0) if leave == "close" else (1, 1))


async def test_watchers_are_told_when_presence_is_stale(presenced: Presenced) -> None:
    """While presence is stale (a broker outage), the watch state and every diff say so."""
    presence = presenced.presence
    presence.stale = True  # what PresenceCluster sets while its broker is away
    watcher = await presenced.client("40")
    watcher.subscribe(WATCH)
    first = await watcher.next_event(WATCH)
    assert first["state"]["stale"] is True
    here = await presenced.client("41")
    here.subscribe(ROOM)
    diff = await watcher.next_event(WATCH)
    assert list(diff["joins"]) == ["41"]
    assert diff["stale"] is True
    presence.stale = False
    here.unsubscribe(ROOM)
    diff = await watcher.next_event(WATCH)
    assert diff["stale"] is False
