"""The canary: a push handler sends itself a marker push and checks that it comes back.

A consumer can be connected and healthy by every other measure and still receive nothing (a
node queue unbound, a consumer the broker dropped without telling, a fan-out socket unsubscribed):
python-socketio #1581 lost a worker that way for 24 hours. Every ``interval`` the canary hands a
marker body to its receiver's own ``send_marker()``, which sends it the way pushes come (the
exchange and binding key for AMQP), and waits for the handler to take it back. A marker that is
overdue while nothing else arrived either means the handler is deaf: the canary marks it so
(``/health`` answers 503 ``deaf``, the ``push_handler_deaf`` metric counts it) and makes the
handler stop with that error, so the supervisor restarts it. After the restart the canary sends
at once and ``deaf`` clears when that marker comes back.

What a marker proves depends on its route. AMQP ``per_node`` and ``stream``: the node's queue
(or the stream) is bound with each binding key (markers take the keys in turn). AMQP ``shared``:
markers go to a side queue of the node's own (``<queue>.canary.<node>``), because the shared
queue's consumers compete; that proves the connection, channel and exchange, not the shared
queue's bindings: a shared queue unbound from the exchange is not noticed (docs/canary.md).

Markers are recognised by their body before decoding: they never reach a topic, a client, the
``push_success``/``push_fail`` listeners or the handler's counts; another node's marker (one
queue bound to several nodes) is dropped the same way, also by a handler whose canary is off
(``is_marker``). AMQP markers expire after ``timeout`` so that they do not pile up in the queue
of a node that is gone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from gos_web_socket.app.exceptions import PushHandlerError

__all__ = ["MARKER_PREFIX", "Canary", "is_marker", "marker_body"]

logger = logging.getLogger(__name__)

MARKER_PREFIX = b'{"gos_canary":"'
"""How every marker body starts; no GOS envelope (``{"topic": ...}``) can start like this."""


def marker_body(token: str) -> bytes:
    return MARKER_PREFIX + token.encode() + b'"}'


def is_marker(body: bytes) -> bool:
    """True for any node's marker: a handler drops it even with its own canary off (in
    ``per_node`` mode every node's queue gets every node's markers)."""
    return body.startswith(MARKER_PREFIX)


class Canary:
    """Sends markers through ``send`` and checks that ``take()`` sees each one come back.

    Args:
        node_id: makes this handler's markers its own (others are dropped unseen).
        send: the receiver's ``send_marker``.
        interval: seconds between markers.
        timeout: seconds a marker may take while nothing else arrives either.
        on_deaf: called with the error once a marker is overdue; the handler stops with it.
        consuming: True while deliveries can come (the handler's ``is_consuming``); a check
            while it is False counts nothing: an outage is already "not consuming", not deaf.
    """

    OnDeaf = Callable[[PushHandlerError], None]

    def __init__(
        self,
        node_id: str,
        send: Callable[[bytes], Awaitable[None]],
        interval: float,
        timeout: float,
        on_deaf: OnDeaf,
        consuming: Callable[[], bool] | None = None,
    ) -> None:
        self.node_id = node_id
        self.send = send
        self.interval = interval
        self.timeout = timeout
        self.on_deaf = on_deaf
        self.consuming = consuming or (lambda: True)
        self.deaf = False
        """True from a missed marker until a marker comes back again."""
        self.misses = 0
        """Markers that did not come back in time (each one restarted the handler)."""
        self.returned = 0
        """Markers that came back."""
        self._seq = 0
        self._waiting: dict[bytes, asyncio.Event] = {}
        self._heard = time.monotonic()
        self._settling = 0
        self._task: asyncio.Task[None] | None = None

    def take(self, body: bytes) -> bool:
        """Note that a delivery arrived; True when it is a marker (the handler drops it)."""
        self._heard = time.monotonic()
        if not is_marker(body):
            return False
        event = self._waiting.pop(body, None)
        if event is not None:
            event.set()
        return True

    def settling(self, busy: bool) -> None:
        """The handler started (True) or finished (False) settling a batch. A batch held up in
        delivery or ack is progress, not deafness: the check waits for it rather than stop the
        handler mid-ack (frames written, not acked: pushes without a message id twice)."""
        self._settling += 1 if busy else -1
        self._heard = time.monotonic()

    def start(self) -> None:
        """Run while the handler consumes; a deaf handler's canary sends at once."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"canary-{self.node_id}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task})
        self._waiting.clear()

    async def _run(self) -> None:
        delay = 0.0 if self.deaf else self.interval
        while True:
            await asyncio.sleep(delay)
            delay = self.interval
            error = await self.check() if self.consuming() else None
            if error is not None and not self.consuming():
                logger.info("canary: no verdict while the handler does not consume (%s)", error)
            elif error is not None:
                self.deaf = True
                self.misses += 1
                logger.error("push handler deaf: %s", error)
                self.on_deaf(error)
                return

    async def check(self) -> PushHandlerError | None:
        """Send a marker and wait for it; the error when the handler is deaf.

        While other deliveries keep arriving the wait goes on, with a fresh marker each
        ``timeout``: an AMQP marker expires after ``timeout``, so one queued behind a backlog
        may be dropped by the broker; any marker of this check coming back will do.
        """
        event = asyncio.Event()
        try:
            while True:
                self._seq += 1
                body = marker_body(f"{self.node_id}.{self._seq}")
                self._waiting[body] = event
                sent = time.monotonic()
                try:
                    await asyncio.wait_for(self.send(body), self.timeout)
                except Exception as exc:
                    return PushHandlerError(f"canary: a marker could not be sent: {exc!r}")
                try:
                    await asyncio.wait_for(event.wait(), self.timeout)
                except TimeoutError:
                    if self._heard > sent or self._settling:  # behind pushes: not deaf
                        continue
                    return PushHandlerError(
                        f"canary: a marker did not come back within {self.timeout:g} s and "
                        "nothing else arrived"
                    )
                self.returned += 1
                if self.deaf:
                    logger.info("push handler hears again: a canary marker came back")
                self.deaf = False
                return None
        finally:
            for key in [key for key, waiting in self._waiting.items() if waiting is event]:
                del self._waiting[key]
