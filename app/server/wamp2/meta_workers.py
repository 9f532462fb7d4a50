"""The meta API across the workers of one node (``server.workers`` > 1).

Each worker keeps its own sessions, subscriptions and registrations (meta.py). The worker that
gets a meta CALL answers from its own tables, asks the other workers over the dealer's relay
channel (relay.py, through the parent) and merges the answers:

- worker → parent ``meta_ask`` (``id``, ``uri``, ``args``, ``asker``: the caller's session id
  and user); the parent forwards it to every other running worker and answers ``meta_asked``
  with how many it asked;
- each worker runs the procedure for the asker (its own route rules decide what the asker may
  see, exactly as for a local caller) and sends ``meta_answer`` (``to``: the asking worker,
  ``value`` or ``error``), which the parent forwards.

The asking worker waits for the answers at most ``ANSWER_WAIT`` seconds; a worker that does
not answer in time (busy, dying) is left out: the result is what arrived (a meta view is a
snapshot anyway, and a dying worker's sessions are leaving). Meta *events* cross workers too
(meta_relay.py).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

from gos_web_socket.app.auth.user import User
from gos_web_socket.app.exceptions import MetaRefused
from gos_web_socket.app.server.wamp2.codes import (
    INVALID_ARGUMENT,
    NO_SUCH_PROCEDURE,
    NOT_AUTHORIZED,
)
from gos_web_socket.app.server.wamp2.meta_relay import EventPeers

if TYPE_CHECKING:
    from gos_web_socket.app.server.wamp2.patterns import Reader

logger = logging.getLogger(__name__)

ANSWER_WAIT = 1.0
"""Seconds the asking worker waits for the other workers' answers."""

ID_RANGE = 2**44
"""Worker ``i`` numbers its subscriptions and registrations from ``i * ID_RANGE + 1``: ids
stay unique across up to 512 workers and within WAMP's 2^53."""

Send = Callable[[dict[str, Any]], None]
Answer = tuple[str, Any]
"""("value", the procedure's result) or ("error", the error URI)."""
Local = Callable[["Asker", str, list[Any]], Any]
"""Run a meta procedure for an asker on this worker (meta.py ``MetaApi.call``)."""


@dataclass(slots=True, frozen=True)
class Asker:
    """A caller on another worker, as this worker's meta API sees it: its session and user."""

    session_id: str
    user: User

    @classmethod
    def of(cls, fields: dict[str, Any]) -> Asker:
        user = User(
            id=fields.get("id"),
            roles=frozenset(fields.get("roles", ())),
            claims=fields.get("claims", {}),
            info=fields.get("info", {}),
            provider=fields.get("provider", "anonymous"),
        )
        return cls(str(fields["session"]), user)


def first_id(worker: int) -> int:
    """The first subscription and registration id of worker ``worker``."""
    return worker * ID_RANGE + 1


def asker_fields(session_id: str, user: User) -> dict[str, Any]:
    """What the other workers need to apply the route rules to this caller (no token)."""
    return {
        "session": session_id,
        "id": user.id,
        "roles": sorted(user.roles),
        "claims": dict(user.claims),
        "info": dict(user.info),
        "provider": user.provider,
    }


class _Pending:
    __slots__ = ("answers", "done", "expected")

    def __init__(self) -> None:
        self.answers: list[Answer] = []
        self.expected: int | None = None
        self.done = asyncio.Event()

    def check(self) -> None:
        if self.expected is not None and len(self.answers) >= self.expected:
            self.done.set()


class MetaPeers:
    """A worker's end: asks the other workers, and answers their asks."""

    def __init__(self, send_up: Send) -> None:
        self.send_up = send_up
        self.events = EventPeers(send_up)
        """The meta events across workers (meta_relay.py)."""
        self.local: Local | None = None
        """Set by the meta API: how this worker answers another worker's ask."""
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}

    async def ask(self, uri: str, args: list[Any], asker: dict[str, Any]) -> list[Answer]:
        """The other workers' answers to meta procedure ``uri`` (those in time)."""
        request = next(self._ids)
        pending = self._pending[request] = _Pending()
        message = {"op": "meta_ask", "id": request, "uri": uri, "args": args, "asker": asker}
        try:
            self.send_up(message)
            async with asyncio.timeout(ANSWER_WAIT):
                await pending.done.wait()
        except (TypeError, ValueError):  # arguments JSON cannot carry: this worker's answer
            logger.info("meta relay: %s arguments cannot cross workers", uri)
        except TimeoutError:
            got, wanted = len(pending.answers), pending.expected
            logger.warning("meta relay: %s: %d of %s workers answered in time", uri, got, wanted)
        finally:
            del self._pending[request]
        return pending.answers

    def received(self, message: dict[str, Any]) -> None:
        """A ``meta_*`` message from the parent."""
        op = message.get("op")
        if op in ("meta_listen", "meta_event"):
            self.events.received(message)
            return
        if op == "meta_ask":
            self.answer(message)
            return
        pending = self._pending.get(message.get("id", 0))
        if pending is None:  # answered after the wait: dropped
            return
        if op == "meta_asked":
            pending.expected = int(message["count"])
        elif op == "meta_answer":
            kind = "error" if "error" in message else "value"
            pending.answers.append((kind, message[kind]))
        pending.check()

    def answer(self, message: dict[str, Any]) -> None:
        """Run another worker's ask here and send the answer back."""
        reply: dict[str, Any] = {"op": "meta_answer", "to": message["from"], "id": message["id"]}
        if self.local is None:
            reply["error"] = NO_SUCH_PROCEDURE
        else:
            try:
                asker = Asker.of(message["asker"])
                reply["value"] = self.local(asker, message["uri"], message["args"])
            except MetaRefused as exc:
                reply["error"] = exc.uri
        self.send_up(reply)


CHANNEL_SUBSCRIBERS = "gos.meta.channel_subscribers"
"""Between workers only: the subscribers of an exact channel on one worker, that the asker
may see (``wamp.subscription.list_subscribers`` of a channel joined on several workers)."""


def merge(uri: str, answers: list[Answer]) -> Answer:
    """One answer from every worker's, this worker's first (module docstring)."""
    values = [payload for kind, payload in answers if kind == "value"]
    if not values:
        return answers[0]
    name = uri.rsplit(".", 1)[1]
    if uri == "wamp.session.count":
        return "value", sum(values)
    if uri == "wamp.session.list" or uri == CHANNEL_SUBSCRIBERS:
        return "value", [item for value in values for item in value]
    if name == "list":  # {"exact": [...], "prefix": [...], "wildcard": [...]}
        merged: dict[str, list[int]] = {}
        for value in values:
            for match, ids in value.items():
                merged.setdefault(match, []).extend(ids)
        return "value", merged
    if uri == "wamp.subscription.match":
        found = [item for value in values if value for item in value]
        return "value", found or None
    if name in ("lookup", "match"):
        return "value", next((value for value in values if value is not None), None)
    return "value", values[0]  # get, list_callees, count_callees: one worker holds the id


class Meta(Protocol):
    """What ``NodeMeta`` needs of this worker's meta API (meta.py ``MetaApi``)."""

    def permitted(self, connection: Reader, verb: str, uri: str) -> bool: ...

    def channel_subscribers(self, connection: Reader, uri: str) -> list[int]: ...

    def call(self, connection: Reader, uri: str, args: list[Any]) -> Any: ...


class NodeMeta:
    """The meta procedures for the whole node: this worker's answer merged with the others'."""

    def __init__(self, meta: Meta, peers: MetaPeers) -> None:
        self.meta = meta
        self.peers = peers
        peers.local = self.answer_worker

    async def ask(self, connection: Reader, uri: str, args: list[Any]) -> Any:
        """Meta procedure ``uri`` across the workers (module docstring).

        Raises:
            MetaRefused: as ``MetaApi.call``; an unknown id when no worker knows it.
        """
        if uri.endswith("_subscribers") and uri.startswith("wamp.subscription."):
            return await self._subscribers(connection, uri, args)
        return await self._gather(connection, uri, args)

    async def _gather(self, connection: Reader, uri: str, args: list[Any]) -> Any:
        try:
            local: Answer = ("value", self.run(connection, uri, args))
            refused = None
        except MetaRefused as exc:
            if exc.uri in (INVALID_ARGUMENT, NOT_AUTHORIZED, NO_SUCH_PROCEDURE):
                raise  # every worker would say the same
            local, refused = ("error", exc.uri), exc
        asker = asker_fields(connection.session_id, connection.user)
        kind, value = merge(uri, [local, *await self.peers.ask(uri, args, asker)])
        if kind == "error":
            raise refused or MetaRefused(value, f"{uri}: no such id {args[0]}")
        return value

    async def _subscribers(self, connection: Reader, uri: str, args: list[Any]) -> Any:
        """An exact subscription's subscribers on every worker (the channel is joined on each
        under that worker's id); a pattern one's are on the asker's worker."""
        details = await self._gather(connection, "wamp.subscription.get", args)
        if details["match"] != "exact":
            return self.meta.call(connection, uri, args)
        found = await self._gather(connection, CHANNEL_SUBSCRIBERS, [details["uri"]])
        return found if uri.endswith("list_subscribers") else len(found)

    def answer_worker(self, asker: Asker, uri: str, args: list[Any]) -> Any:
        """Another worker's ask, for its caller ``asker`` (``MetaPeers.local``).

        Raises:
            MetaRefused: as ``MetaApi.call``.
        """
        return self.run(cast("Reader", asker), uri, args)  # lookups read its session and user

    def run(self, connection: Reader, uri: str, args: list[Any]) -> Any:
        """``MetaApi.call``, and the workers' own ``CHANNEL_SUBSCRIBERS``."""
        if uri == CHANNEL_SUBSCRIBERS:
            return self.channel_subscribers(connection, args)
        return self.meta.call(connection, uri, args)

    def channel_subscribers(self, connection: Reader, args: list[Any]) -> list[int]:
        """The subscribers of exact channel ``args[0]`` here, when the asker may see it."""
        name = "wamp.subscription.list_subscribers"
        if not self.meta.permitted(connection, "call", name):
            raise MetaRefused(NOT_AUTHORIZED, f"not authorized: call on {name}")
        uri = args[0] if args and isinstance(args[0], str) else ""
        return self.meta.channel_subscribers(connection, uri)
