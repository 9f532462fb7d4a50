"""The server's parts without a socket: the end-of-turn flush, the live connections, the
spawned tasks, and how v2 maps failures and closes onto its URIs."""

from __future__ import annotations

import asyncio
from typing import Any

from gos_web_socket.app.close_codes import (
    CLOSE_GOING_AWAY,
    CLOSE_INVALID_PAYLOAD,
    CLOSE_NORMAL,
    CLOSE_POLICY_VIOLATION,
)
from gos_web_socket.app.server.live import FlushScheduler, LiveConnections, Tasks
from gos_web_socket.app.server.session import Failure
from gos_web_socket.app.server.wamp2.codes import (
    ABORT,
    CALL,
    CLOSE_REALM,
    GOODBYE,
    INVALID_ARGUMENT,
    INVALID_URI,
    NO_SUCH_PROCEDURE,
    NOT_AUTHORIZED,
    PROTOCOL_VIOLATION,
    RUNTIME_ERROR,
    SUBSCRIBE,
    SYSTEM_SHUTDOWN,
    close_message,
    error_uri,
)


class FakeConnection:
    def __init__(self) -> None:
        self.flushes = 0
        self.closed: list[tuple[int, str]] = []
        self.dropped = False

    def flush(self) -> None:
        self.flushes += 1

    def close(self, code: int, reason: str) -> None:
        self.closed.append((code, reason))

    def dropConnection(self, abort: bool = False) -> None:  # noqa: N802 (autobahn's name)
        self.dropped = abort


async def test_flush_runs_once_at_the_end_of_the_turn_and_wakes_flushed() -> None:
    flusher = FlushScheduler()
    one, two = FakeConnection(), FakeConnection()
    await flusher.flushed()  # nothing queued: returns at once
    flusher.schedule(one)  # type: ignore[arg-type]
    flusher.schedule(two)  # type: ignore[arg-type]
    assert (one.flushes, two.flushes) == (0, 0)
    await asyncio.wait_for(flusher.flushed(), 1)
    assert (one.flushes, two.flushes) == (1, 1)


async def test_close_all_closes_then_drops_who_stays() -> None:
    live = LiveConnections()
    leaving, staying = FakeConnection(), FakeConnection()
    live.register(leaving)  # type: ignore[arg-type]
    live.register(staying)  # type: ignore[arg-type]
    assert len(live) == 2
    asyncio.get_running_loop().call_soon(live.unregister, leaving)
    await live.close_all(CLOSE_GOING_AWAY, "bye", 0.05)
    assert leaving.closed == staying.closed == [(CLOSE_GOING_AWAY, "bye")]
    assert (leaving.dropped, staying.dropped) == (False, True)
    assert live.snapshot() == frozenset({staying})


async def test_tasks_finish_waits_then_cancels() -> None:
    tasks = Tasks()
    quick = tasks.spawn(asyncio.sleep(0))
    slow = tasks.spawn(asyncio.sleep(10))
    await tasks.finish(0.05)
    await asyncio.sleep(0)
    assert quick.done() and not quick.cancelled()
    assert slow.cancelled()


def failure(code: Any, no_route: bool = False) -> Failure:
    return Failure("acme/x", "desc", {"code": code}, no_route=no_route)


def test_error_uri_by_gos_code_and_request_type() -> None:
    assert error_uri(failure(404, no_route=True), CALL) == NO_SUCH_PROCEDURE
    assert error_uri(failure(404, no_route=True), SUBSCRIBE) == INVALID_URI
    assert error_uri(failure(404), CALL) == NO_SUCH_PROCEDURE
    assert error_uri(failure(404), SUBSCRIBE) == RUNTIME_ERROR
    assert error_uri(failure(400), SUBSCRIBE) == INVALID_ARGUMENT
    assert error_uri(failure(401), CALL) == NOT_AUTHORIZED
    assert error_uri(failure(403), CALL) == NOT_AUTHORIZED
    assert error_uri(failure(500), CALL) == RUNTIME_ERROR
    assert error_uri(failure("403"), CALL) == RUNTIME_ERROR


def test_close_message_goodbye_after_welcome_abort_before() -> None:
    assert close_message(CLOSE_GOING_AWAY, True) == (GOODBYE, SYSTEM_SHUTDOWN)
    assert close_message(CLOSE_GOING_AWAY, False) == (ABORT, SYSTEM_SHUTDOWN)
    assert close_message(CLOSE_POLICY_VIOLATION, True) == (GOODBYE, NOT_AUTHORIZED)
    assert close_message(CLOSE_NORMAL, True) == (GOODBYE, CLOSE_REALM)
    assert close_message(CLOSE_INVALID_PAYLOAD, True) == (ABORT, PROTOCOL_VIOLATION)
