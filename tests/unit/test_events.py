"""The event dispatcher: priorities, sync and async listeners, isolation of failures."""

from __future__ import annotations

import asyncio

from gos_web_socket.app.events import (
    PUSH_FAIL,
    PUSH_SUCCESS,
    ClientConnectedEvent,
    Event,
    EventDispatcher,
    register_listeners,
)


async def test_listeners_run_by_descending_priority_then_registration() -> None:
    """Higher priority first; equal priorities keep their registration order."""
    seen: list[str] = []
    dispatcher = EventDispatcher()
    dispatcher.add_listener(PUSH_SUCCESS, lambda e: seen.append("low"), priority=-5)
    dispatcher.add_listener(PUSH_SUCCESS, lambda e: seen.append("first0"))
    dispatcher.add_listener(PUSH_SUCCESS, lambda e: seen.append("high"), priority=255)
    dispatcher.add_listener(PUSH_SUCCESS, lambda e: seen.append("second0"))
    await dispatcher.dispatch(PUSH_SUCCESS, Event())
    assert seen == ["high", "first0", "second0", "low"]


async def test_async_listeners_are_awaited_in_order() -> None:
    """An async listener finishes before the next one starts."""
    seen: list[str] = []

    async def slow(event: Event) -> None:
        await asyncio.sleep(0.01)
        seen.append("slow")

    dispatcher = EventDispatcher()
    dispatcher.add_listener(PUSH_FAIL, slow, priority=1)
    dispatcher.add_listener(PUSH_FAIL, lambda e: seen.append("sync"))
    await dispatcher.dispatch(PUSH_FAIL, Event())
    assert seen == ["slow", "sync"]


async def test_stop_propagation_skips_the_rest() -> None:
    """A listener can stop the event, as in Symfony."""
    seen: list[str] = []
    dispatcher = EventDispatcher()
    dispatcher.add_listener(PUSH_FAIL, lambda e: (seen.append("a"), e.stop_propagation()))
    dispatcher.add_listener(PUSH_FAIL, lambda e: seen.append("b"))
    event = await dispatcher.dispatch(PUSH_FAIL, Event())
    assert seen == ["a"] and event.propagation_stopped


async def test_a_failing_listener_does_not_stop_the_others(caplog) -> None:
    """One broken listener is logged; the push path goes on."""
    seen: list[str] = []

    def broken(event: Event) -> None:
        raise RuntimeError("boom")

    dispatcher = EventDispatcher()
    dispatcher.add_listener(PUSH_FAIL, broken, priority=1)
    dispatcher.add_listener(PUSH_FAIL, lambda e: seen.append("ok"))
    await dispatcher.dispatch(PUSH_FAIL, Event())
    assert seen == ["ok"]
    assert "boom" in caplog.text


async def test_register_listeners_from_tuples_and_remove() -> None:
    """The container's (name, listener, priority) tuples attach; remove_listener detaches."""
    seen: list[object] = []
    listener = seen.append
    dispatcher = register_listeners(
        EventDispatcher(), [("gos_web_socket.client_connected", listener, 3)]
    )
    event = ClientConnectedEvent(connection="conn-1")
    await dispatcher.dispatch("gos_web_socket.client_connected", event)
    assert seen == [event]
    dispatcher.remove_listener("gos_web_socket.client_connected", listener)
    assert not dispatcher.has_listeners("gos_web_socket.client_connected")
