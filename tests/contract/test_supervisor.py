"""The Supervisor on its own: backoff, counting, logging, closing (an in-memory handler)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from gos_web_socket.app.events import EventDispatcher
from gos_web_socket.app.exceptions import ListenError, PushHandlerError
from gos_web_socket.app.router import Router
from gos_web_socket.app.transports.handler import ServerPushHandler
from gos_web_socket.app.transports.memory import (
    InMemoryReceiver,
    InMemoryServerPushHandler,
    MemoryDelivery,
)
from gos_web_socket.app.transports.supervisor import Supervisor
from tests.contract.conftest import RecordingServer
from tests.support.waiting import eventually


class FlakyReceiver(InMemoryReceiver):
    """An in-memory receiver whose first ``failures`` opens fail, like a broker not yet up."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.opens = 0

    async def open(self) -> None:
        self.opens += 1
        if self.opens <= self.failures:
            raise PushHandlerError(f"broker away (attempt {self.opens})")
        await super().open()


def flaky_handler(router: Router, failures: int) -> tuple[ServerPushHandler, FlakyReceiver]:
    receiver = FlakyReceiver(failures)
    handler = ServerPushHandler(router, EventDispatcher(), receiver)
    handler.name = "memory"
    return handler, receiver


async def test_failed_starts_back_off_to_the_cap_then_consume(router: Router) -> None:
    """Five failed starts: start() does not wait for them, the backoff doubles up to its cap,
    each retry counts as a restart, and the handler then consumes and delivers."""
    handler, receiver = flaky_handler(router, failures=5)
    server = RecordingServer()
    supervisor = Supervisor(
        {"memory": handler}, server, first_backoff=0.01, max_backoff=0.04, first_attempt_wait=0
    )
    await supervisor.start()
    try:
        assert not handler.is_consuming
        await eventually(lambda: handler.is_consuming, 5, "consuming after 5 failures")
        state = supervisor.states["memory"]
        assert (state.status, state.restarts, handler.stats.restarts) == ("consuming", 5, 5)
        assert state.backoff == 0.04 and "attempt 5" in state.last_error
        delivery = MemoryDelivery(b'{"topic": "acme/channel/1", "data": {"n": 1}}')
        receiver.put(delivery)
        await asyncio.wait_for(delivery.outcome, 5)  # acked
        assert server.pushes.get_nowait() == {"n": 1}
    finally:
        await supervisor.close()
    assert supervisor.states["memory"].status == "closed" and not handler.is_consuming


async def test_failures_are_logged_with_the_cause_and_rate_limited(
    router: Router, caplog: pytest.LogCaptureFixture
) -> None:
    """Three quick failures make one warning naming the cause, then one line when it consumes."""
    handler, _ = flaky_handler(router, failures=3)
    supervisor = Supervisor({"memory": handler}, RecordingServer(), first_backoff=0.01)
    with caplog.at_level(logging.INFO, "gos_web_socket.app.transports.supervisor"):
        await supervisor.start()
        await eventually(lambda: handler.is_consuming, 5)
        await supervisor.close()
    messages = [
        r.getMessage()
        for r in caplog.records
        if r.name == "gos_web_socket.app.transports.supervisor"
    ]
    assert messages == [
        "push handler memory did not start: broker away (attempt 1); retrying (restart 1)",
        "push handler memory consuming again",
    ]


async def test_a_handler_closed_on_purpose_stays_closed(router: Router) -> None:
    """close() on the handler itself is not a crash: no restart follows."""
    handler = InMemoryServerPushHandler(router, EventDispatcher())
    supervisor = Supervisor({"memory": handler}, RecordingServer(), first_backoff=0.01)
    await supervisor.start()
    try:
        assert handler.is_consuming
        await handler.close()
        await eventually(lambda: supervisor.states["memory"].status == "closed", 5)
        await asyncio.sleep(0.05)  # a restart would have come by now
        assert not handler.is_consuming and handler.stats.restarts == 0
    finally:
        await supervisor.close()


async def test_close_during_backoff_closes_the_handler(router: Router) -> None:
    """A supervisor closed while a handler waits to retry stops at once and closes it."""
    handler, receiver = flaky_handler(router, failures=1_000)
    supervisor = Supervisor({"memory": handler}, RecordingServer(), first_backoff=60)
    await supervisor.start()
    await eventually(lambda: supervisor.states["memory"].status == "backoff")
    await asyncio.wait_for(supervisor.close(), 5)
    assert supervisor.states["memory"].status == "closed" and not handler.is_consuming
    assert receiver.opens == 1


class TakenReceiver(FlakyReceiver):
    """Its opens in ``taken`` fail with ListenError (the address is in use), others as usual."""

    def __init__(self, taken: set[int]) -> None:
        super().__init__(failures=0)
        self.taken = taken

    async def open(self) -> None:
        self.opens += 1
        if self.opens in self.taken:
            raise ListenError("pushers.lines", "127.0.0.1", 7000, OSError(98, "in use"))
        await InMemoryReceiver.open(self)


async def test_an_address_in_use_at_start_up_is_raised(router: Router) -> None:
    """ListenError on the first start is not retried: start() raises it and closes all."""
    receiver = TakenReceiver(taken={1})
    handler = ServerPushHandler(router, EventDispatcher(), receiver)
    supervisor = Supervisor({"lines": handler}, RecordingServer(), first_backoff=0.01)
    with pytest.raises(ListenError, match="pushers.lines: cannot listen on 127.0.0.1:7000"):
        await supervisor.start()
    await asyncio.sleep(0.05)  # a retry would have come by now
    assert receiver.opens == 1 and supervisor.states["lines"].status == "closed"


async def test_an_address_in_use_on_a_restart_is_retried(
    router: Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After start-up the server cannot stop any more: a ListenError on a restart is retried."""
    receiver = TakenReceiver(taken={2})
    handler = ServerPushHandler(router, EventDispatcher(), receiver)
    supervisor = Supervisor({"lines": handler}, RecordingServer(), first_backoff=0.01)
    await supervisor.start()
    try:
        receive = receiver.receive

        async def crash_once() -> Any:
            monkeypatch.setattr(receiver, "receive", receive)
            raise PushHandlerError("injected")

        monkeypatch.setattr(receiver, "receive", crash_once)
        receiver.put(MemoryDelivery(b"{}"))  # wakes the pending receive; the next one crashes
        await eventually(lambda: receiver.opens == 3 and handler.is_consuming, 5)
        assert handler.stats.restarts == 2
    finally:
        await supervisor.close()
