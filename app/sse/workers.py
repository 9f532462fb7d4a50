"""HTTP publishes across the workers of one node (``server.workers`` > 1), over the socket pair
each worker already has with the parent (``ParentLink``, app/workers.py), one JSON object a
line:

- worker → parent: ``mercure_publish``, a publish the worker took (a Mercure update or a JSON
  API push) with a ``ref`` of its own;
- parent → every worker, the sender included, all in one order: the same line with ``from``
  (the sender's index) and ``position`` (``[epoch, offset]`` in the parent's publish log).

Every worker delivers the lines in the parent's order, so an update has one position, hence
one event id, on every worker, and a ``Last-Event-ID`` taken on one replays on another. The
sender's own copy fires ``push_success`` / ``push_fail`` and answers the request: the events
fire once per publish, the other workers deliver quietly.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from gos_web_socket.app.exceptions import PushFailed
from gos_web_socket.app.position import LocalLog, Position

if TYPE_CHECKING:
    from gos_web_socket.app.server.wamp2.relay import RelayEnd

logger = logging.getLogger(__name__)

PUBLISH = "mercure_publish"
NUMBERED_WITHIN = 10.0
"""Seconds a worker waits for the parent to number (and itself to deliver) a publish."""

Send = Callable[[dict[str, Any]], None]
Forward = Callable[[int, dict[str, Any]], None]


def is_mercure(message: Mapping[str, Any]) -> bool:
    """Whether a parent link's line is a publish's (the others are the dealer's, presence's)."""
    return message.get("op") == PUBLISH


class Deliverer(Protocol):
    """What delivers a numbered publish on a worker (the ``Publisher``)."""

    async def deliver(self, message: Mapping[str, Any], position: Position, raw: str | None) -> Any:
        """Push it at ``position``; ``raw`` (the request body) on the sender's worker only,
        which fires the push events; what the request answers."""
        ...


class Link(Protocol):
    """A worker's end of its socket pair (``ParentLink``), as the publishes use it."""

    @property
    def attached(self) -> RelayEnd | None: ...

    def attach(self, relay: RelayEnd) -> None: ...

    def send(self, message: dict[str, Any]) -> None: ...


class WorkerPublishes:
    """A worker's end: sends its publishes up, delivers everyone's in the parent's order."""

    def __init__(self, publisher: Deliverer, send_up: Send, index: int) -> None:
        self.publisher = publisher
        self.send_up = send_up
        self.index = index
        self._refs = itertools.count()
        self._waiting: dict[int, tuple[asyncio.Future[Any], str]] = {}
        """The sender's publishes the parent has not sent back yet: answer and raw body."""
        self._late: dict[int, str] = {}
        """Raw bodies of publishes whose request gave up waiting: their events still fire
        here when the parent sends them back (the others deliver them too)."""
        self._lines: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def publish(self, message: dict[str, Any], raw: str) -> Any:
        """Have the parent number ``message`` for every worker; what this worker's delivery
        answers once the line came back.

        Raises:
            PushFailed: no answer within ``NUMBERED_WITHIN`` seconds.
            Exception: what this worker's delivery raised (``push_fail`` fired).
        """
        ref = next(self._refs)
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[ref] = (answer, raw)
        self.send_up({**message, "op": PUBLISH, "ref": ref})
        try:
            async with asyncio.timeout(NUMBERED_WITHIN):
                return await asyncio.shield(answer)
        except TimeoutError:
            if self._waiting.pop(ref, None) is not None:  # not back yet (else being delivered)
                self._late[ref] = raw
            raise PushFailed(
                f"the publish was not delivered within {NUMBERED_WITHIN} s (workers' link); "
                "it may still be, then push_success or push_fail tells"
            ) from None
        finally:
            self._waiting.pop(ref, None)

    def received(self, message: dict[str, Any]) -> None:
        """A numbered line from the parent: delivered after those before it."""
        self._lines.put_nowait(message)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._deliver_all(), name="mercure-publishes")

    async def _deliver_all(self) -> None:
        while not self._lines.empty():
            message = self._lines.get_nowait()
            epoch, offset = message["position"]
            mine = message.get("from") == self.index
            own = self._waiting.pop(message["ref"], None) if mine else None
            answer, raw = own if own is not None else (None, None)
            if own is None and mine:  # its request gave up waiting
                raw = self._late.pop(message["ref"], None)
            try:
                result = await self.publisher.deliver(message, Position(epoch, offset), raw)
            except Exception as exc:
                if answer is None:
                    logger.warning("a publish of worker %s failed here: %r", message["from"], exc)
                elif not answer.done():
                    answer.set_exception(exc)
                continue
            if answer is not None and not answer.done():
                answer.set_result(result)


class Split:
    """In front of what a parent link fed before: publish lines here, the others on."""

    def __init__(self, publishes: WorkerPublishes, rest: RelayEnd | None) -> None:
        self.publishes = publishes
        self.rest = rest

    def received(self, message: dict[str, Any]) -> None:
        if is_mercure(message):
            self.publishes.received(message)
        elif self.rest is not None:
            self.rest.received(message)


def attach_worker(publisher: Deliverer, link: Link, index: int) -> WorkerPublishes:
    """Publishes of this worker travel over ``link`` to every worker."""
    publishes = WorkerPublishes(publisher, link.send, index)
    link.attach(Split(publishes, link.attached))
    return publishes


class ParentPublishes:
    """The parent's end: numbers each publish in its own log, sends it to every worker."""

    def __init__(self, forward: Forward, workers: int, log: LocalLog | None = None) -> None:
        self.forward = forward
        self.workers = workers
        self.log = log or LocalLog()
        """The parent's log (the ZeroMQ fan-out's when there is one: one epoch for both)."""

    def received(self, worker: int, message: dict[str, Any]) -> None:
        position = self.log.next()
        line = {**message, "from": worker, "position": [position.epoch, position.offset]}
        for index in range(self.workers):
            self.forward(index, line)
