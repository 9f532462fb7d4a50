"""Pattern registrations (``match: prefix | wildcard``) across ``server.workers: 2``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import RegisterOptions

from gos_web_socket.app.testing import V2Client
from tests.support.process import ServerProcess, server_env
from tests.support.waiting import outcome, settles
from tests.wamp2.test_dealer_workers import connections, leave_all, on_other_worker, two_workers


@pytest.fixture
async def workers() -> AsyncIterator[ServerProcess]:
    async with two_workers(server_env(SERVER__WORKERS=2)) as server:
        yield server


def named(name: str) -> Any:
    return lambda details: [name, details.procedure]


def options(match: str) -> RegisterOptions:
    return RegisterOptions(match=match, details_arg="details")


CROSSING = ["wamp.error.no_such_procedure", "wamp.error.canceled", "wamp.error.unavailable"]
"""What a call may answer while a change crosses the parent (nobody serves it yet, or the
callee it reached went away)."""


async def reaches(client: V2Client, uri: str, expected: str, within: float = 5.0) -> None:
    """The call of ``uri`` reaches callee ``expected``, once a change reached this worker (a
    release crosses the parent: asked every 0.05 s for ``within`` s, at least once)."""
    await settles(
        lambda: outcome(client.session.call(uri), CROSSING),
        lambda got: got == [expected, uri],
        within,
        what=f"{uri} reaching {expected}",
    )


@pytest.mark.parametrize("serializer", ["json", "msgpack"])
async def test_pattern_registrations_across_workers(
    workers: ServerProcess, serializer: str
) -> None:
    """A call on either worker reaches the prefix or wildcard callee on the other, in the
    spec's order over both workers' registrations (exact, the longest prefix, a wildcard);
    the same pattern is refused on the other worker, and once unregistered serves no more."""
    far = await V2Client.join(workers.ws_url, serializer=serializer)
    (home,) = [i for i, (_, n) in (await connections(workers)).items() if n == 1]
    near, extra = await on_other_worker(workers, home, serializer)
    await far.session.register(named("exact"), "com.acme.img.big.exact", options("exact"))
    await far.session.register(named("prefix-short"), "com.acme.img", options("prefix"))
    await far.session.register(named("wild"), "com.acme..resize", options("wildcard"))
    long = await near.session.register(named("prefix-long"), "com.acme.img.big", options("prefix"))
    await near.session.register(named("near-wild"), "com.acme..size", options("wildcard"))
    cases = {
        "com.acme.img.big.exact": "exact",  # a remote exact beats a local prefix
        "com.acme.img.big.one": "prefix-long",  # the longest prefix, wherever it is
        "com.acme.img.small": "prefix-short",
        "com.acme.imgx.size": "prefix-short",  # a remote prefix beats a local wildcard
        "com.acme.x.resize": "wild",
        "com.acme.x.size": "near-wild",
    }
    for caller in (near, far):
        for uri, expected in cases.items():
            await reaches(caller, uri, expected, within=0)
    with pytest.raises(ApplicationError) as raised:
        await far.session.register(named("again"), "com.acme.img.big", options("prefix"))
    assert raised.value.error == "wamp.error.procedure_already_exists"

    await long.unregister()
    await reaches(far, "com.acme.img.big.one", "prefix-short")
    await reaches(near, "com.acme.img.big.one", "prefix-short")
    await leave_all(far, near, *extra)


async def test_registration_match_names_the_registration_a_call_reaches(
    workers: ServerProcess,
) -> None:
    """wamp.registration.match, asked on either worker, names the registration a call of the
    URI goes to over both workers (a remote exact beats a local prefix, a remote longer prefix
    a local shorter one), not the asking worker's own best."""
    far = await V2Client.join(workers.ws_url)
    (home,) = [i for i, (_, n) in (await connections(workers)).items() if n == 1]
    near, extra = await on_other_worker(workers, home)
    exact = await far.session.register(named("exact"), "com.acme.img.big.exact", options("exact"))
    longer = await far.session.register(named("long"), "com.acme.img.big", options("prefix"))
    short = await near.session.register(named("short"), "com.acme.img", options("prefix"))
    cases = {
        "com.acme.img.big.exact": exact.id,
        "com.acme.img.big.one": longer.id,
        "com.acme.img.small": short.id,
    }
    for asker in (near, far):
        for uri, expected in cases.items():
            await reaches(asker, uri, {exact.id: "exact", longer.id: "long"}.get(expected, "short"))
            assert await asker.session.call("wamp.registration.match", uri) == expected, uri
    await leave_all(far, near, *extra)
