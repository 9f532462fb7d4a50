"""Presence in one process: members, distinct users, queries over WAMP v1 and v2, the rules."""

from __future__ import annotations

import pytest

from gos_web_socket.app.exceptions import RouteDefinitionError
from gos_web_socket.app.router import load_routes_from_mapping
from gos_web_socket.app.testing import CallError, WampTestClient
from gos_web_socket.app.testing.wamp2 import V2Client
from tests.presence.conftest import Presenced, presence_server, token
from tests.support.server import url_of
from tests.support.waiting import eventually

ROOM = "acme/chat/7"


async def test_three_tabs_are_one_user(presenced: Presenced) -> None:
    """Three tabs are one user with three connections; anonymous ones count as connections."""
    tabs = [await presenced.client("42") for _ in range(3)]
    other = await presenced.client("43")
    anonymous = await presenced.client()
    for client in (*tabs, other, anonymous):
        client.subscribe(ROOM)
    presence = presenced.presence
    await eventually(lambda: presence.counts(ROOM) == (5, 2), what="5 connections, 2 users")
    found = await presence.of(ROOM)
    assert found.users["42"]["connections"] == 3
    assert set(found.users) == {"42", "43"}
    assert presence.is_online("42") and not presence.is_online("44")
    answer = await other.call("gos/presence", ROOM)
    assert answer["num_clients"] == 5 and answer["num_users"] == 2
    await tabs[0].close()
    await eventually(lambda: presence.counts(ROOM) == (4, 2), what="a tab closed")
    for tab in tabs[1:]:
        await tab.close()
    await eventually(lambda: presence.counts(ROOM) == (2, 1), what="user 42 gone")
    await eventually(lambda: not presence.is_online("42"), what="42 offline")


async def test_lifecycle_events_are_first_and_last(presenced: Presenced) -> None:
    """Listeners hear joined once for the first tab and left once after the last one."""
    first, second = await presenced.client("42"), await presenced.client("42")
    first.subscribe(ROOM)
    second.subscribe(ROOM)
    presence = presenced.presence
    await eventually(lambda: presence.counts(ROOM) == (2, 1))
    first.unsubscribe(ROOM)
    await eventually(lambda: presence.counts(ROOM) == (1, 1))
    await first.close()
    await second.close()
    recorder = presenced.recorder
    await eventually(lambda: recorder.of("disconnected") == [("42", None)], what="disconnected")
    assert recorder.of("connected") == [("42", None)]
    assert recorder.of("joined") == [("42", ROOM)]
    assert recorder.of("left") == [("42", ROOM)]
    kinds = [e.kind.rsplit(".", 1)[1] for e in recorder.events]
    assert kinds == ["connected", "joined", "left", "disconnected"]


async def test_a_client_secure_refuses_is_never_a_member(presenced: Presenced) -> None:
    """A subscriber the topic's secure() refuses never appears in presence nor in events."""
    barred, welcome = await presenced.client("66"), await presenced.client("67")
    barred.subscribe("acme/guarded/1")
    welcome.subscribe("acme/guarded/1")
    await eventually(lambda: presenced.presence.counts("acme/guarded/1") == (1, 1))
    await barred.wait_closed()
    assert list((await presenced.presence.of("acme/guarded/1")).users) == ["67"]
    assert presenced.recorder.of("joined") == [("67", "acme/guarded/1")]


async def test_presence_is_off_on_other_routes(presenced: Presenced) -> None:
    """A route without presence: true is not tracked and its presence query is refused with 404."""
    client = await presenced.client("42")
    client.subscribe("acme/plain/1")
    await eventually(lambda: "acme/plain/1" in presenced.server.topics)
    assert presenced.presence.counts("acme/plain/1") == (0, 0)
    with pytest.raises(CallError) as refused:
        await client.call("gos/presence", "acme/plain/1")
    assert "presence: true" in refused.value.desc


async def test_query_follows_the_subscribe_rule(presenced: Presenced) -> None:
    """Who may not subscribe to a channel may not see who is in it (403), anonymous included."""
    client = await presenced.client("42")
    with pytest.raises(CallError) as refused:
        await client.call("gos/presence", "acme/private/1")
    assert refused.value.details["code"] == 403
    anonymous = await presenced.client()
    with pytest.raises(CallError) as anonymous_refused:
        await anonymous.call("gos/presence", "acme/private/1")
    assert anonymous_refused.value.details["code"] == 403


async def test_queries_are_rate_limited(presenced: Presenced) -> None:
    """Past its burst a connection's presence queries get 429; its session stays open."""
    client = await presenced.client("42")
    burst = presenced.presence.limits.presence_queries_burst
    codes = []
    for _ in range(burst + 3):
        try:
            await client.call("gos/presence", ROOM)
            codes.append(200)
        except CallError as error:
            codes.append(error.details["code"])
    assert codes.count(429) >= 2 and codes[0] == 200
    assert client.is_open


async def test_info_is_bounded(presenced: Presenced) -> None:
    """A user's info larger than presence_info_bytes is shown as {}; a small one as given."""
    presence = presenced.presence
    url = url_of(presenced.server)
    big = token("50", info={"bio": "x" * 5000})
    small = token("51", info={"name": "Ada"})
    clients = [await presenced.client()]  # anonymous, then two users with info
    for signed in (big, small):
        client = await WampTestClient.connect(f"{url}?token={signed}")
        presenced.clients.append(client)
        client.subscribe(ROOM)
    clients[0].subscribe(ROOM)
    await eventually(lambda: presence.counts(ROOM) == (3, 2))
    users = (await presence.of(ROOM)).users
    assert users["50"]["info"] == {} and users["51"]["info"] == {"name": "Ada"}


async def test_wamp2_procedure(presenced: Presenced) -> None:
    """WAMP v2 clients call gos.presence and get connections and distinct users."""
    url = url_of(presenced.server) + f"?token={token('42')}"
    client = await V2Client.join(url)
    try:
        await client.subscribe(ROOM)
        await eventually(lambda: presenced.presence.counts(ROOM) == (1, 1))
        answer = await client.session.call("gos.presence", ROOM)
        assert answer["num_users"] == 1 and list(answer["users"]) == ["42"]
    finally:
        await client.leave()


def test_presence_key_must_be_a_bool() -> None:
    """A non-bool presence is a definition error naming key, value and what is allowed."""
    routes = {"r": {"pattern": "a/{b}", "callback": "c", "presence": "yes"}}
    with pytest.raises(RouteDefinitionError, match=r"presence: 'yes': expected true or false"):
        load_routes_from_mapping(routes)
    assert (
        load_routes_from_mapping({"r": {"pattern": "a/{b}", "callback": "c"}})["r"].presence
        is False
    )


async def test_a_stopped_server_leaves_no_diff_timer() -> None:
    """Stopping the server closes presence: no diff waits for its window, every leave was heard."""
    async with presence_server({"window": 60.0}) as started:
        client = await started.client("42")
        client.subscribe(ROOM)
        await eventually(lambda: started.presence.diffs.pending == 1, what="42's join waits")
        presence, recorder = started.presence, started.recorder
    assert presence.diffs.pending == 0
    assert recorder.of("disconnected") == [("42", None)]
