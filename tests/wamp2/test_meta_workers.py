"""The meta API answers for every worker of the node (``server.workers: 2``)."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from autobahn.wamp.exception import ApplicationError

from gos_web_socket.app.testing import V2Client
from tests.support.process import ServerProcess, server_env
from tests.wamp2.test_dealer_workers import connections, leave_all, on_other_worker
from tests.workers.conftest import until_ready

ROUTING = Path(__file__).with_name("meta_routing.yaml")


@pytest.fixture
async def workers() -> AsyncIterator[ServerProcess]:
    env = server_env(SERVER__WORKERS=2)
    env["GOS_WEB_SOCKET__SERVER__ROUTER__RESOURCES"] = f'["{ROUTING}"]'
    server = await ServerProcess(env).start()
    try:
        await until_ready(server)
        yield server
    finally:
        await server.stop()


async def refused(client: V2Client, uri: str, *args: object) -> str:
    with pytest.raises(ApplicationError) as raised:
        await client.session.call(uri, *args)
    return str(raised.value.error)


@pytest.mark.parametrize("serializer", ["json", "msgpack"])
async def test_sessions_and_subscriptions_across_workers(
    workers: ServerProcess, serializer: str
) -> None:
    """Session count/list/get and a channel's subscriptions, asked on one worker, include the
    other worker's sessions and subscribers; each worker's subscription id names the channel."""
    first = await V2Client.join(workers.ws_url, serializer=serializer)
    (home,) = [i for i, (_, n) in (await connections(workers)).items() if n == 1]
    second, extra = await on_other_worker(workers, home, serializer)
    everyone = {c.session_id for c in (first, second, *extra)}
    call = first.session.call
    assert await call("wamp.session.count") == len(everyone)
    assert set(await call("wamp.session.list")) == everyone
    details = await call("wamp.session.get", second.session_id)
    assert details["session"] == second.session_id
    assert await refused(first, "wamp.session.get", 1) == "wamp.error.no_such_session"

    here = (await first.subscribe("acme/channel/lobby")).id
    there = (await second.subscribe("acme/channel/lobby")).id
    assert here != there  # subscription ids are unique across workers
    assert await call("wamp.subscription.lookup", "acme/channel/lobby") == here
    assert {here, there} <= set((await call("wamp.subscription.list"))["exact"])
    assert set(await call("wamp.subscription.match", "acme/channel/lobby")) == {here, there}
    assert (await call("wamp.subscription.get", there))["uri"] == "acme/channel/lobby"
    pair = {first.session_id, second.session_id}
    assert set(await call("wamp.subscription.list_subscribers", there)) == pair
    assert await second.session.call("wamp.subscription.count_subscribers", here) == 2
    assert await refused(first, "wamp.subscription.get", 7) == "wamp.error.no_such_subscription"
    await leave_all(first, second, *extra)


async def test_registrations_across_workers_keep_the_route_rules(workers: ServerProcess) -> None:
    """A caller on the other worker sees the callee's registrations its routes let it call,
    and not the others (an anonymous caller, a procedure only authenticated users may call)."""
    callee = await V2Client.join(workers.ws_url)
    (home,) = [i for i, (_, n) in (await connections(workers)).items() if n == 1]
    open_one = await callee.session.register(lambda: 1, "com.acme.open")
    secret = await callee.session.register(lambda: 2, "com.secret.hidden")
    caller, extra = await on_other_worker(workers, home)
    call = caller.session.call
    assert await call("wamp.registration.lookup", "com.acme.open") == open_one.id
    assert await call("wamp.registration.match", "com.acme.open") == open_one.id
    listed = (await call("wamp.registration.list"))["exact"]
    assert open_one.id in listed and secret.id not in listed
    assert await call("wamp.registration.lookup", "com.secret.hidden") is None
    assert (await call("wamp.registration.get", open_one.id))["uri"] == "com.acme.open"
    assert await call("wamp.registration.list_callees", open_one.id) == [callee.session_id]
    assert await call("wamp.registration.count_callees", open_one.id) == 1
    missing = await refused(caller, "wamp.registration.get", secret.id)
    assert missing == "wamp.error.no_such_registration"
    await leave_all(callee, caller, *extra)


async def test_a_worker_that_does_not_answer_is_left_out(workers: ServerProcess) -> None:
    """The other worker stopped (SIGSTOP): the answer comes after the bounded wait, with the
    asking worker's sessions only; once it runs again, both workers' sessions."""
    first = await V2Client.join(workers.ws_url)
    (home,) = [i for i, (_, n) in (await connections(workers)).items() if n == 1]
    second, extra = await on_other_worker(workers, home)
    counts = await connections(workers)
    other = next(i for i in counts if i != home)
    os.kill(counts[other][0], signal.SIGSTOP)
    try:
        assert await first.session.call("wamp.session.count") == counts[home][1]
    finally:
        os.kill(counts[other][0], signal.SIGCONT)
    assert await first.session.call("wamp.session.count") == 2 + len(extra)
    await leave_all(first, second, *extra)


META_EVENTS = [
    "wamp.session.on_join",
    "wamp.session.on_leave",
    "wamp.subscription.on_create",
    "wamp.subscription.on_subscribe",
    "wamp.subscription.on_unsubscribe",
    "wamp.subscription.on_delete",
    "wamp.registration.on_register",
]


@pytest.mark.parametrize("serializer", ["json", "msgpack"])
async def test_meta_events_reach_subscribers_on_the_other_worker(
    workers: ServerProcess, serializer: str
) -> None:
    """A meta subscriber on one worker gets the join, subscribe, unsubscribe, register and
    leave events of a session on the other worker; a registration its route rules do not let
    it call stays hidden there as here."""
    watcher = await V2Client.join(workers.ws_url, serializer=serializer)
    (home,) = [i for i, (_, n) in (await connections(workers)).items() if n == 1]
    for topic in META_EVENTS:
        await watcher.subscribe(topic)
    # the ask goes after this worker's listened topics on the same lines: the other knows them
    await watcher.session.call("wamp.session.count")
    other, extra = await on_other_worker(workers, home, serializer)
    joined: set[int] = set()
    while other.session_id not in joined:
        (details,), _ = await watcher.next_arguments("wamp.session.on_join")
        joined.add(details["session"])
    assert joined == {other.session_id, *(client.session_id for client in extra)}

    subscription = await other.subscribe("acme/channel/far")
    (session, created), _ = await watcher.next_arguments("wamp.subscription.on_create")
    assert session == other.session_id and created["uri"] == "acme/channel/far"
    assert created["id"] == subscription.id and created["match"] == "exact"
    subscribed, _ = await watcher.next_arguments("wamp.subscription.on_subscribe")
    assert subscribed == (other.session_id, subscription.id)

    await other.session.register(lambda: 2, "com.secret.hidden")  # call: authenticated
    registration = await other.session.register(lambda: 1, "com.acme.far")
    registered, _ = await watcher.next_arguments("wamp.registration.on_register")
    assert registered == (other.session_id, registration.id)

    await subscription.unsubscribe()
    left = (other.session_id, subscription.id)
    assert (await watcher.next_arguments("wamp.subscription.on_unsubscribe"))[0] == left
    assert (await watcher.next_arguments("wamp.subscription.on_delete"))[0] == left
    await other.leave()
    (session, *_), _ = await watcher.next_arguments("wamp.session.on_leave")
    assert session == other.session_id
    await leave_all(watcher, *extra)


DEPARTURES = [
    "wamp.session.on_leave",
    "wamp.registration.on_unregister",
    "wamp.registration.on_delete",
    "wamp.subscription.on_unsubscribe",
    "wamp.subscription.on_delete",
]


async def test_a_dead_workers_departures_reach_the_other_workers_watchers(
    workers: ServerProcess,
) -> None:
    """The other worker dies (SIGKILL): a subscriber here of the departure topics only gets,
    for what opened there after it subscribed, on_unregister and on_delete of the
    registrations, on_unsubscribe and on_delete of the subscriptions, then on_leave."""
    watcher = await V2Client.join(workers.ws_url)
    (home,) = [i for i, (_, n) in (await connections(workers)).items() if n == 1]
    for topic in DEPARTURES:
        await watcher.subscribe(topic)
    await watcher.session.call("wamp.session.count")  # the other worker knows what we listen to
    other, extra = await on_other_worker(workers, home)
    registration = await other.session.register(lambda: 1, "com.acme.far")
    subscription = await other.subscribe("acme/channel/far")
    # the other worker's events went before its answer, on the same lines
    assert await watcher.session.call("wamp.session.count") == 2 + len(extra)
    (far,) = [i for i in await connections(workers) if i != home]
    os.kill((await connections(workers))[far][0], signal.SIGKILL)

    async def event(topic: str) -> tuple[Any, ...]:
        return (await watcher.next_arguments(topic, timeout=20))[0]

    held = (other.session_id, registration.id)
    assert await event("wamp.registration.on_unregister") == held
    assert await event("wamp.registration.on_delete") == held
    held = (other.session_id, subscription.id)
    assert await event("wamp.subscription.on_unsubscribe") == held
    assert await event("wamp.subscription.on_delete") == held
    (session, *_) = await event("wamp.session.on_leave")
    assert session == other.session_id  # the others opened on the way are on this worker
    await leave_all(watcher, *extra)
