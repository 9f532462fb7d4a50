"""Shared registrations (``invoke``) across the workers of one node (``server.workers: 2``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import pytest
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import RegisterOptions

from gos_web_socket.app.testing import V2Client
from tests.support.process import ServerProcess, server_env
from tests.wamp2.test_dealer_workers import connections, leave_all, on_other_worker, two_workers

ROUND = RegisterOptions(invoke="roundrobin")


@pytest.fixture
async def workers() -> AsyncIterator[ServerProcess]:
    async with two_workers(server_env(SERVER__WORKERS=2)) as server:
        yield server


async def calls(client: V2Client, count: int) -> Counter[str]:
    return Counter([await client.session.call("com.acme.who") for _ in range(count)])


@pytest.mark.parametrize("serializer", ["json", "msgpack"])
async def test_roundrobin_spans_the_callees_of_both_workers(
    workers: ServerProcess, serializer: str
) -> None:
    """Two callees on worker A and one on worker B share com.acme.who (roundrobin): a caller
    on A or on B reaches each in turn (A weighs as its two callees on B); another
    policy or a single REGISTER is refused on either worker; B's callee gone, A serves all."""
    first = await V2Client.join(workers.ws_url, serializer=serializer)
    (home,) = [i for i, (_, n) in (await connections(workers)).items() if n == 1]
    await first.session.register(lambda: "a1", "com.acme.who", options=ROUND)
    away, extra = await on_other_worker(workers, home, serializer)
    await away.session.register(lambda: "b", "com.acme.who", options=ROUND)
    other = next(i for i in await connections(workers) if i != home)
    second, more = await on_other_worker(workers, other, serializer)
    await second.session.register(lambda: "a2", "com.acme.who", options=ROUND)

    assert await calls(second, 6) == Counter(a1=2, a2=2, b=2)
    assert await calls(away, 6) == Counter(a1=2, a2=2, b=2)  # A counts as its two callees
    for client, options in ((away, RegisterOptions(invoke="first")), (first, None)):
        with pytest.raises(ApplicationError) as refused:
            await client.session.register(lambda: "x", "com.acme.who", options=options)
        assert refused.value.error == "wamp.error.procedure_exists_with_different_invocation_policy"

    await away.leave()
    caller, others = await on_other_worker(workers, home)
    assert set(await calls(caller, 4)) == {"a1", "a2"}
    await leave_all(first, second, caller, *extra, *more, *others)
