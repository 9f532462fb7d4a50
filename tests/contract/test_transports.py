"""The transport contract, the same behaviour over every transport (memory, zmq, amqp, wamp,
and the example custom transport ``lines``).

Push after close is defined as: the pusher connects again and the push is delivered (a pusher
is reusable; ``close()`` only releases its connection).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gos_web_socket.app.demo.models import ChatMessage
from gos_web_socket.app.exceptions import (
    InvalidPayload,
    MessageDecodeError,
    NoRouteMatch,
    PushHandlerError,
    RouteNotFound,
)
from gos_web_socket.app.message import Message
from tests.contract.conftest import ROOM, Rig
from tests.support.waiting import eventually


async def push_and_take(rig: Rig, data: Any, tries: int = 1) -> Any:
    """Push ``data`` and return what reached the topic; at-most-once transports may retry."""
    for attempt in range(tries):
        await rig.pusher.push(data, "acme_topic", ROOM)
        try:
            return await rig.take(2.0 if attempt + 1 < tries else 10.0)
        except TimeoutError:
            if attempt + 1 == tries:
                raise
    raise AssertionError("unreachable")


async def failures_of(rig: Rig, count: int) -> list[type[BaseException]]:
    """The push_fail errors once ``count`` arrived (two ZeroMQ peers are not ordered)."""
    await eventually(lambda: len(rig.failures) >= count, what="push_fail events")
    return [type(event.error) for event in rig.failures]


async def test_push_reaches_the_topic(rig: Rig) -> None:
    """A push arrives at the route's topic with its data intact."""
    assert await push_and_take(rig, {"msg": "hi", "n": [1, 2]}) == {"msg": "hi", "n": [1, 2]}
    assert rig.pusher.stats.sent == 1


async def test_unknown_route_name_fails_the_push(rig: Rig) -> None:
    """push() to a route that does not exist raises RouteNotFound and counts a failure."""
    with pytest.raises(RouteNotFound):
        await rig.pusher.push({"msg": "hi"}, "no_such_route", ROOM)
    assert rig.pusher.stats.failed == 1


async def test_bad_body_fires_push_fail(receiving_rig: Rig) -> None:
    """A body that is not an envelope fires one push_fail; the next push is still delivered."""
    assert receiving_rig.send_raw is not None
    await receiving_rig.send_raw(b"{not json")
    assert await push_and_take(receiving_rig, {"msg": "after"}) == {"msg": "after"}
    assert await failures_of(receiving_rig, 1) == [MessageDecodeError]
    assert receiving_rig.failures[0].message == "{not json"


async def test_unknown_channel_fires_push_fail(receiving_rig: Rig) -> None:
    """An envelope whose channel matches no route fires push_fail; delivery goes on."""
    assert receiving_rig.send_raw is not None
    await receiving_rig.send_raw(Message("nowhere/at/all", 1).encode())
    assert await push_and_take(receiving_rig, {"msg": "after"}) == {"msg": "after"}
    assert await failures_of(receiving_rig, 1) == [NoRouteMatch]


async def test_a_push_that_does_not_fit_its_model_is_refused_by_the_pusher(rig: Rig) -> None:
    """push() to a route with a payload model refuses data that does not fit it, on every
    transport, before sending: InvalidPayload names the field and a failure is counted."""
    with pytest.raises(InvalidPayload, match="text: Field required"):
        await rig.pusher.push({"author": "ann"}, "acme_chat", ROOM)
    assert rig.pusher.stats.failed == 1
    await rig.pusher.push(ChatMessage(author="ann", text="hi"), "acme_chat", ROOM)
    assert rig.pusher.stats.sent == 1


async def test_a_body_that_does_not_fit_its_model_fires_push_fail(receiving_rig: Rig) -> None:
    """A foreign body whose data does not fit its route's model fires push_fail with
    InvalidPayload instead of reaching the topic; delivery goes on."""
    assert receiving_rig.send_raw is not None
    await receiving_rig.send_raw(Message("acme/chat/42", {"author": "x"}).encode())
    assert await push_and_take(receiving_rig, {"msg": "after"}) == {"msg": "after"}
    assert await failures_of(receiving_rig, 1) == [InvalidPayload]


async def test_close_twice(rig: Rig) -> None:
    """close() of the pusher and of the handler is safe twice; the handler stops consuming."""
    await push_and_take(rig, {"msg": "before"})
    await rig.pusher.close()
    await rig.pusher.close()
    if rig.handler is not None:
        await rig.handler.close()
        await rig.handler.close()
        assert not rig.handler.is_consuming


async def test_push_after_close_connects_again(rig: Rig) -> None:
    """A pusher closed after a push connects again on the next push, which is delivered."""
    assert await push_and_take(rig, {"msg": "first"}) == {"msg": "first"}
    await rig.pusher.close()
    assert await push_and_take(rig, {"msg": "second"}) == {"msg": "second"}


async def test_receive_loop_crash_is_restarted(
    receiving_rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error raised from the receive loop is survived: the supervisor restarts the
    handler once, it consumes again, and a push is delivered."""
    handler = receiving_rig.handler
    assert handler is not None and receiving_rig.supervisor is not None
    receive = handler.receiver.receive
    crashed = asyncio.Event()

    async def crash_once() -> Any:
        if not crashed.is_set():
            crashed.set()
            raise PushHandlerError("injected receive failure")
        return await receive()

    monkeypatch.setattr(handler.receiver, "receive", crash_once)
    assert await push_and_take(receiving_rig, {"msg": "before"}) == {"msg": "before"}
    await asyncio.wait_for(crashed.wait(), 5)
    await eventually(lambda: handler.stats.restarts == 1 and handler.is_consuming, 10, "a restart")
    assert await push_and_take(receiving_rig, {"msg": "after"}, tries=3) == {"msg": "after"}
    assert handler.stats.restarts == 1
    assert (
        "injected receive failure"
        in receiving_rig.supervisor.states[receiving_rig.transport].last_error
    )
