"""One way for tests to wait: for a condition of their own state, or for an answer they ask for.

Tests wait for events, not fixed sleeps: both waiters poll until a deadline and then fail
with what was awaited, so a loaded machine makes a test slower, not red. Each caller keeps
its own deadline and polling interval (an interval can matter: a rate-limited server).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection
from typing import TypeVar

from autobahn.wamp.exception import ApplicationError

T = TypeVar("T")
Said = str | Callable[[], str]
"""What a waiter waits for, in its failure message; a callable is asked at the failure (to
show what the test saw by then, such as a server's output)."""


def said(what: Said) -> str:
    """``what`` as the failure message says it."""
    return what() if callable(what) else what


async def eventually(
    predicate: Callable[[], object],
    within: float = 5.0,
    what: Said = "",
    every: float = 0.005,
) -> None:
    """Wait until ``predicate()`` holds, checking every ``every`` s (it must be cheap: state
    the test can read, such as a server's counters or a client's received events)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"not true within {within} s: {said(what) or predicate}")
        await asyncio.sleep(every)


async def settles(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], object] = bool,
    within: float = 10.0,
    every: float = 0.05,
    what: Said = "",
) -> T:
    """``await probe()`` every ``every`` s until ``accept`` takes its answer; that answer. For
    checks that ask someone (a server, a broker): probed at least once, even with no time
    left, and a failure shows the last answer."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        answer = await probe()
        if accept(answer):
            return answer
        if loop.time() >= deadline:
            raise AssertionError(
                f"not within {within} s: {said(what) or probe}; last answer {answer!r}"
            )
        await asyncio.sleep(every)


async def outcome(call: Awaitable[T], errors: Collection[str]) -> T | str:
    """What a WAMP call gives: its result, or the URI of its ApplicationError when that is one
    of ``errors`` (those a test waits through); any other error is raised."""
    try:
        return await call
    except ApplicationError as exc:
        if exc.error not in errors:
            raise
        return str(exc.error)
