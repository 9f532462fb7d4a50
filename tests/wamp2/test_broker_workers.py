"""Pattern subscriptions and the meta API with ``server.workers: 2`` (a real server process)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gos_web_socket.app.testing import V2Client
from gos_web_socket.app.transports.zmq.pusher import ZmqPusher
from gos_web_socket.containers import build_router
from gos_web_socket.settings.models import DEFAULT_ROUTING, ZmqSettings
from tests.support.process import ServerProcess, server_env, setting
from tests.wamp2.conftest import next_of, subscribe_events
from tests.wamp2.test_dealer_workers import connections, leave_all, on_other_worker
from tests.workers.conftest import until_ready


@pytest.fixture
async def workers() -> AsyncIterator[ServerProcess]:
    server = await ServerProcess(server_env(SERVER__WORKERS=2)).start()
    try:
        await until_ready(server)
        yield server
    finally:
        await server.stop()


async def test_pattern_subscribers_on_both_workers(workers: ServerProcess) -> None:
    """A push reaches pattern subscribers on either worker with details.topic; each worker's
    meta API answers for its own subscriptions."""
    first = await V2Client.join(workers.ws_url)
    (home,) = [i for i, (_, n) in (await connections(workers)).items() if n == 1]
    second, extra = await on_other_worker(workers, home)
    by_prefix, by_prefix_subscription = await subscribe_events(first, "acme/channel/", "prefix")
    by_wildcard, wildcard = await subscribe_events(second, "acme//lobby", "wildcard")
    prefix_id, wildcard_id = by_prefix_subscription.id, wildcard.id
    zmq = ZmqPusher(
        ZmqSettings(port=int(setting(workers.env, "PUSHERS__ZMQ__PORT"))),
        build_router([DEFAULT_ROUTING]),
    )
    try:
        await zmq.push({"n": 1}, "acme_topic", {"room": "lobby"})
        for queue in (by_prefix, by_wildcard):
            args, details = await next_of(queue, 10)
            assert (args, details.topic) == (({"n": 1},), "acme/channel/lobby")
    finally:
        await zmq.close()
    listed = await first.session.call("wamp.subscription.list")
    assert listed == {"exact": [], "prefix": [prefix_id], "wildcard": []}
    listed = await second.session.call("wamp.subscription.list")
    assert listed == {"exact": [], "prefix": [], "wildcard": [wildcard_id]}
    await leave_all(first, second, *extra)
