"""push_sync() in background mode, on a transport whose confirms wait for the test."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from gos_web_socket.app.events import PusherFailEvent
from gos_web_socket.app.exceptions import PusherError, PushFailed, RouteNotFound
from gos_web_socket.app.router import Router
from gos_web_socket.app.transports.memory import InMemoryPusher, InMemoryServerPushHandler
from tests.support.process import server_env
from tests.sync_push.conftest import FailLog, GatedPusher

ROOM = {"room": "1"}


def wait_for(predicate: object, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        time.sleep(0.005)


def test_wait_is_the_default_mode(router: Router) -> None:
    """A pusher built without settings waits for its transport, as push_sync always did."""
    pusher = GatedPusher(router)
    assert (pusher.confirm_mode, pusher.max_in_flight) == ("wait", 1000)
    pusher.opened.set()
    pusher.push_sync({"n": 1}, "acme_topic", ROOM)
    assert pusher.taken == [{"n": 1}] and pusher.in_flight == 0
    with pytest.raises(PushFailed, match="refused"):  # wait mode raises the failure itself
        pusher.push_sync({"refuse": True}, "acme_topic", ROOM)
    pusher.close_sync()


def test_push_sync_returns_before_the_transport_took_the_push(gated: GatedPusher) -> None:
    """In background mode push_sync returns at once; flush_sync waits until it was taken."""
    gated.push_sync({"n": 1}, "acme_topic", ROOM)
    assert gated.in_flight == 1 and gated.taken == [] and gated.stats.sent == 0
    threading.Timer(0.1, gated.opened.set).start()
    gated.flush_sync(timeout=5)
    assert gated.taken == [{"n": 1}] and gated.in_flight == 0 and gated.stats.sent == 1


def test_full_window_blocks_push_sync_until_the_timeout(gated: GatedPusher) -> None:
    """With max_in_flight (3) unconfirmed, the next push_sync waits for room, then fails."""
    for n in range(3):
        gated.push_sync({"n": n}, "acme_topic", ROOM)
    started = time.monotonic()
    with pytest.raises(PushFailed, match=r"3 background pushes \(max_in_flight\)"):
        gated.push_sync({"n": 3}, "acme_topic", ROOM, timeout=0.2)
    assert time.monotonic() - started >= 0.2
    assert gated.in_flight == 3
    gated.opened.set()
    gated.flush_sync(timeout=5)
    assert sorted(p["n"] for p in gated.taken) == [0, 1, 2]  # the refused one was never made


def test_blocked_push_sync_goes_on_once_a_confirm_frees_room(gated: GatedPusher) -> None:
    """A push_sync blocked by a full window returns when one confirm arrives; none is lost."""
    for n in range(3):
        gated.push_sync({"n": n}, "acme_topic", ROOM)
    done = threading.Event()

    def fourth() -> None:
        gated.push_sync({"n": 3}, "acme_topic", ROOM, timeout=10)
        done.set()

    thread = threading.Thread(target=fourth)
    thread.start()
    assert not done.wait(0.2)  # blocked: the window is full
    gated.opened.set()
    assert done.wait(5)
    thread.join()
    gated.flush_sync(timeout=5)
    assert sorted(p["n"] for p in gated.taken) == [0, 1, 2, 3]


def test_flush_lists_each_failure_and_push_fail_fires(
    gated: GatedPusher, fail_log: FailLog
) -> None:
    """flush_sync raises PushFailed naming route, message id and cause of each failed push;
    push_fail fired once per failure; the failures are reported once."""
    gated.max_in_flight = 10
    gated.opened.set()
    for n in range(6):
        gated.push_sync({"n": n, "refuse": n % 3 == 0}, "acme_topic", {"room": str(n)})
    with pytest.raises(PushFailed) as info:
        gated.flush_sync(timeout=5)
    error = info.value
    assert str(error).splitlines()[0] == 'pusher "gated": 2 of 6 background pushes failed:'
    assert "acme_topic (acme/channel/0), message id m-refused: the gate refused it" in str(error)
    assert sorted(f.channel for f in error.failures) == ["acme/channel/0", "acme/channel/3"]
    first = min(error.failures, key=lambda f: f.channel)
    assert (first.route_name, first.route_parameters, first.data["n"]) == (
        "acme_topic",
        {"room": "0"},
        0,
    )
    assert isinstance(error.__cause__, PushFailed)
    assert sorted(e.failure.channel for e in fail_log.events) == [
        "acme/channel/0",
        "acme/channel/3",
    ]
    assert all(isinstance(e, PusherFailEvent) and e.pusher is gated for e in fail_log.events)
    assert '"refuse":true' in fail_log.events[0].message  # the envelope, as on handler events
    assert gated.stats.failed == 2 and gated.stats.sent == 4
    gated.flush_sync(timeout=5)  # reported once: nothing more to say


def test_routing_errors_still_raise_from_push_sync(gated: GatedPusher) -> None:
    """A route that does not exist is the caller's mistake: it raises at once, nothing queued."""
    with pytest.raises(RouteNotFound):
        gated.push_sync({"n": 1}, "no_such_route", ROOM)
    with pytest.raises(PusherError, match="must be a string, a dict or a list"):
        gated.push_sync(42, "acme_topic", ROOM)
    assert gated.in_flight == 0


def test_close_sync_gives_up_on_unconfirmed_pushes_and_reports_them(
    gated: GatedPusher, fail_log: FailLog
) -> None:
    """close_sync waits its timeout, cancels what is still unconfirmed and lists it; the
    connection is released all the same."""
    gated.push_sync({"n": 1}, "acme_topic", ROOM)
    gated.push_sync({"n": 2}, "acme_topic", ROOM)
    with pytest.raises(PushFailed, match="2 of 2 background pushes failed") as info:
        gated.close_sync(timeout=0.2)
    assert {str(f.error) for f in info.value.failures} == {
        "the pusher closed before the transport confirmed the push"
    }
    assert len(fail_log.events) == 2 and gated.disconnects == 1 and gated.in_flight == 0


async def test_async_flush_and_close_wait_for_pushes_made_from_threads(gated: GatedPusher) -> None:
    """Code on an event loop awaits flush()/close() for pushes other threads made in background
    mode (they run on the pusher's own loop thread)."""
    gated.max_in_flight = 100
    await asyncio.to_thread(
        lambda: [gated.push_sync({"n": n}, "acme_topic", ROOM) for n in range(50)]
    )
    flushing = asyncio.ensure_future(gated.flush())
    await asyncio.sleep(0.1)
    assert not flushing.done()  # nothing was confirmed yet
    gated.opened.set()
    await asyncio.wait_for(flushing, 5)
    assert len(gated.taken) == 50
    await asyncio.to_thread(gated.push_sync, {"refuse": True}, "acme_topic", ROOM)
    with pytest.raises(PushFailed, match="1 of 1 background pushes failed"):
        await asyncio.wait_for(gated.close(), 5)
    assert gated.disconnects == 1


def test_sync_calls_from_the_pushers_own_loop_are_refused(router: Router) -> None:
    """flush_sync from inside the pusher's loop would wait for itself: refused with a hint."""
    pusher = InMemoryPusher(router)
    pusher.confirm_mode = "background"

    async def inside() -> None:
        await pusher.push({"n": 1}, "acme_topic", ROOM)  # binds the pusher to this loop
        with pytest.raises(PusherError, match="await flush"):
            pusher.flush_sync()

    asyncio.run(inside())


def test_every_push_of_eight_threads_reaches_the_transport(router: Router) -> None:
    """Eight threads pushing in background mode through a window of 16: all 800 arrive."""
    pusher = InMemoryPusher(router)
    pusher.confirm_mode, pusher.max_in_flight = "background", 16
    barrier = threading.Barrier(8)

    def worker(t: int) -> None:
        barrier.wait()
        for i in range(100):
            pusher.push_sync({"t": t, "i": i}, "acme_topic", ROOM, timeout=10)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    pusher.close_sync()
    got = sorted((m.data["t"], m.data["i"]) for m, _ in pusher.sent)
    assert got == [(t, i) for t in range(8) for i in range(100)]


def test_a_push_the_transport_refuses_later_is_reported(router: Router, fail_log: FailLog) -> None:
    """The in-memory transport with no handler running refuses every push: each one fails in
    the background and flush_sync lists all of them."""
    handler = InMemoryServerPushHandler(router, dispatcher=None)  # type: ignore[arg-type]
    pusher = InMemoryPusher(router, target=handler)
    pusher.confirm_mode = "background"
    for n in range(3):
        pusher.push_sync({"n": n}, "acme_topic", ROOM)
    with pytest.raises(PushFailed, match="3 of 3 background pushes failed") as info:
        pusher.flush_sync(timeout=5)
    assert all("has not been started" in str(f.error) for f in info.value.failures)
    pusher.close_sync()


def test_exit_without_flush_still_confirms_and_logs_failures(tmp_path: object) -> None:
    """A script that pushes in background mode and exits without flushing: the pushes are
    confirmed at exit, and the ones that failed are logged, not silently dropped."""
    script = textwrap.dedent(
        """
        import logging
        from gos_web_socket.app.router import Route, RouteCollection, Router
        from gos_web_socket.app.transports.memory import InMemoryPusher, InMemoryServerPushHandler
        logging.basicConfig(level=logging.ERROR)
        routes = RouteCollection()
        routes.add("acme_topic", Route("acme/channel/{room}", "acme.topic"))
        router = Router(routes)
        pusher = InMemoryPusher(router, target=InMemoryServerPushHandler(router, None))
        pusher.confirm_mode = "background"
        for n in range(3):
            pusher.push_sync({"n": n}, "acme_topic", {"room": str(n)})
        print("pushed", flush=True)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env=server_env(),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "pushed\n"
    assert "at exit: pusher" in done.stderr and "3 of 3 background pushes failed" in done.stderr
    assert "acme_topic (acme/channel/2), message id none:" in done.stderr
