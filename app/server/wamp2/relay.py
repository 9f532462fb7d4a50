"""Calls across workers (``server.workers`` > 1): each worker's dealer, relayed by the parent.

Every worker has its own dealer (dealer.py). The parent (app/workers.py) keeps which worker
holds which procedure URI and forwards messages between workers, over the socket pair each
worker already has with it (``ParentLink``), one JSON object a line:

- worker → parent: ``claim`` (with its ``invoke`` policy) / ``release`` a URI; ``invoke``,
  ``interrupt`` and ``answer`` (``to``: a worker index), which the parent forwards with
  ``from`` set;
- parent → worker: ``claimed`` (ok or not), ``held`` / ``released`` (other workers' URIs;
  for a shared URI, every holder in claim order), the forwarded messages, and ``gone`` when a
  worker died.

A shared registration (``invoke`` not single) may be held by several workers with the same
policy: the caller's worker picks among its own callees and one entry per other holding
worker (``SharedRemote``), and that worker among its own callees.

On the caller's worker a remote procedure is a ``Registration`` whose callee is the other
worker (``RemoteCallee``): the local dealer keeps the call, its timer, its budgets and its
cancel as for a local callee. On the callee's worker the call is an ordinary one whose caller
is the other worker (``RelayReply``). A worker that dies is a callee that left for the others
(``wamp.error.canceled``) and a caller that left (its calls are interrupted).

The meta API's ``meta_*`` messages share the channel (meta_workers.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from gos_web_socket.app.server.wamp2.codes import (
    CANCELED,
    INTERRUPT,
    INVALID_ARGUMENT,
    INVOCATION,
    NO_SUCH_PROCEDURE,
    PROCEDURE_ALREADY_EXISTS,
    UNREGISTERED,
)
from gos_web_socket.app.server.wamp2.dealer import Dealer, Key
from gos_web_socket.app.server.wamp2.matching import best
from gos_web_socket.app.server.wamp2.meta_relay import ParentMeta
from gos_web_socket.app.server.wamp2.meta_workers import MetaPeers
from gos_web_socket.app.server.wamp2.registrations import (
    EXACT,
    Picker,
    Procedure,
    Registration,
    Terms,
)

logger = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], None]
"""Write one message to the parent (a worker) or to one worker (the parent, see ``Forward``)."""
Forward = Callable[[int, dict[str, Any]], None]


class RelayEnd(Protocol):
    """What a link (the worker's ``ParentLink``, a node's ``NodeLink``) hands the messages it
    reads to, once ``attach``-ed: the worker's ``WorkerRelay``."""

    def received(self, message: dict[str, Any]) -> None: ...


@runtime_checkable
class Revocable(Protocol):
    """A callee that may be told its registration was revoked (a v2 session's ``Callee``)."""

    @property
    def revokes(self) -> bool: ...


def key_of(message: dict[str, Any]) -> Key:
    """The (match, URI) a relay message names; no ``match``: an exact URI (as nodes say)."""
    return message.get("match", "exact"), message["uri"]


def with_match(message: dict[str, Any], match: str) -> dict[str, Any]:
    """``message`` naming a pattern's ``match``; an exact URI's stays as it was."""
    return message if match == "exact" else message | {"match": match}


def worker_key(index: int) -> str:
    """The session id under which a worker is a caller or callee in another worker's dealer."""
    return f"worker:{index}"


class RemoteCallee:
    """Another worker as the callee of a registration (the dealer's ``CalleeEnd``)."""

    __slots__ = ("index", "match", "send_up", "uri")

    cancels = True  # the callee's own worker decides whether its client gets INTERRUPT
    progresses = True

    def __init__(self, index: int, key: Key, send_up: Send) -> None:
        self.index = index
        self.match, self.uri = key
        self.send_up = send_up

    @property
    def session_id(self) -> str:
        return worker_key(self.index)

    def send(self, message: list[Any]) -> bool:
        """INVOCATION and INTERRUPT of the local dealer, as relay messages to the worker;
        False when the arguments cannot be JSON (MessagePack ``bytes``)."""
        try:
            self._send(message)
        except (TypeError, ValueError) as exc:
            logger.info("dealer relay: %s cannot cross workers: %s", self.uri, exc)
            return False
        return True

    def _send(self, message: list[Any]) -> None:
        if message[0] == INVOCATION:
            args = message[4] if len(message) > 4 else []
            kwargs = message[5] if len(message) > 5 else {}
            invoke = {
                "op": "invoke",
                "to": self.index,
                "id": message[1],
                "uri": self.uri,
                "details": message[3],
                "args": args,
                "kwargs": kwargs,
            }
            self.send_up(with_match(invoke, self.match))
        elif message[0] == INTERRUPT:
            self.send_up({"op": "interrupt", "to": self.index, "id": message[1], **message[2]})


class RelayReply:
    """The answers of a call another worker made, sent back to it (invocations.py ``Reply``)."""

    __slots__ = ("request", "send_up", "to")

    def __init__(self, send_up: Send, to: int, request: int) -> None:
        self.send_up = send_up
        self.to = to
        self.request = request

    def _answer(self, kind: str, args: list[Any], kwargs: dict[str, Any], uri: str = "") -> None:
        message = {"op": "answer", "to": self.to, "id": self.request, "kind": kind}
        try:
            self.send_up(message | {"uri": uri, "args": args, "kwargs": kwargs})
        except (TypeError, ValueError):  # MessagePack bytes: the call ends, not the session
            desc = ["the answer cannot cross workers (binary values)"]
            message |= {"kind": "error", "uri": INVALID_ARGUMENT, "args": desc, "kwargs": {}}
            self.send_up(message)

    def progress(self, args: list[Any], kwargs: dict[str, Any]) -> None:
        self._answer("progress", args, kwargs)

    def result(self, args: list[Any], kwargs: dict[str, Any]) -> None:
        self._answer("result", args, kwargs)

    def error(self, uri: str, args: list[Any], kwargs: dict[str, Any]) -> None:
        self._answer("error", args, kwargs, uri)


class SharedRemote:
    """A shared registration across workers: its policy, and the holding workers in claim
    order, this one (``me``) included when it holds the URI too."""

    __slots__ = ("holders", "me", "turns", "weights")

    def __init__(self, invoke: str, me: int) -> None:
        self.me = me
        self.holders: list[int] = []
        self.weights: list[int] = []
        """How many callees each holder has (its turns in a round-robin cycle)."""
        self.turns = Picker(invoke)
        """The policy's pick (registrations.py), over this call's candidates."""

    @property
    def invoke(self) -> str:
        return self.turns.invoke

    def pick(self, candidates: list[Registration]) -> Registration | None:
        """By the policy among this worker's callees and one entry per callee of each other
        worker (which then picks among its own callees by the same policy)."""
        if not candidates:
            return None
        return self.turns.pick(candidates)


class WorkerRelay:
    """A worker's end of the relay: the other workers' URIs, claims, and forwarded calls."""

    def __init__(self, dealer: Dealer, send_up: Send) -> None:
        self.dealer = dealer
        self.send_up = send_up
        self.remote: dict[Key, Registration] = {}
        """The procedures other workers hold, by (match, URI)."""
        self._claims: dict[Key, list[asyncio.Future[bool]]] = {}
        self.meta: MetaPeers | None = None
        """The meta API across workers (meta_workers.py); None between nodes."""
        self.shared: dict[Key, SharedRemote] = {}
        """The shared registrations (``invoke`` not single) other workers also hold."""
        self._patterns: set[Key] = set()
        """The prefix and wildcard keys of ``remote``."""

    async def claim(self, uri: str, invoke: str = "single", match: str = "exact") -> bool:
        """Ask the parent for (match, URI); False: another worker holds it (not shared alike)."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._claims.setdefault((match, uri), []).append(future)
        self.send_up(with_match({"op": "claim", "uri": uri, "invoke": invoke}, match))
        return await future

    def policy(self, key: Key) -> str:
        """The ``invoke`` policy of a (match, URI) other workers hold."""
        shared = self.shared.get(key)
        return "single" if shared is None else shared.invoke

    def serving(self, uri: str, local: Procedure | None) -> Key | None:
        """The (match, URI) a call of ``uri`` goes to among this worker's best (``local``)
        and the other workers': exact, then the longest prefix, then the wildcard whose
        literal components come first (matching.py ``best``)."""
        if ("exact", uri) in self.remote:
            return "exact", uri
        if local is not None and local.match == "exact":
            return "exact", uri
        if not self._patterns:
            return None if local is None else (local.match, local.uri)
        keys = list(self._patterns)
        if local is not None:
            keys.append((local.match, local.uri))
        return best(keys, uri)

    def pick(self, key: Key, local: Procedure | None) -> Registration | None:
        """The callee of a call to (match, URI) among this worker's (``local``) and the
        other workers holding it; None: no other worker does."""
        shared = self.shared.get(key)
        if shared is None:
            return self.remote.get(key) if local is None else None
        candidates: list[Registration] = []
        for index, weight in zip(shared.holders, shared.weights, strict=True):
            if index != shared.me:
                candidates.extend([self._remote(index, key)] * weight)
            elif local is not None:
                candidates.extend(local.callees)
        return shared.pick(candidates)

    def _remote(self, index: int, key: Key) -> Registration:
        """Worker ``index`` as the callee of (match, URI)."""
        terms = EXACT if key[0] == "exact" else Terms(match=key[0])
        return Registration(0, key[1], RemoteCallee(index, key, self.send_up), terms)

    def release(self, uri: str, match: str = "exact") -> None:
        self.send_up(with_match({"op": "release", "uri": uri}, match))

    def weigh(self, key: Key, callees: int) -> None:
        """Tell the other workers how many callees of shared ``key`` this one has (across
        workers only: shared registrations stay one node's)."""
        if self.meta is not None:
            self.send_up(with_match({"op": "callees", "uri": key[1], "count": callees}, key[0]))

    def received(self, message: dict[str, Any]) -> None:
        """One message from the parent."""
        op = message.get("op")
        if self.meta is not None and str(op).startswith("meta_"):
            self.meta.received(message)
            return
        handler = getattr(self, f"on_{op}", None)
        if handler is None:
            logger.warning("dealer relay: unknown message %r", op)
            return
        handler(message)

    def on_claimed(self, message: dict[str, Any]) -> None:
        key = key_of(message)
        waiting = self._claims.get(key)
        if waiting:
            future = waiting.pop(0)
            if not waiting:
                del self._claims[key]
            if not future.done():
                future.set_result(bool(message["ok"]))

    def on_held(self, message: dict[str, Any]) -> None:
        key, index = key_of(message), message["worker"]
        self.remote[key] = self._remote(index, key)
        if key[0] != "exact":
            self._patterns.add(key)
        invoke = message.get("invoke", "single")
        if invoke == "single":
            self.shared.pop(key, None)
            return
        shared = self.shared.setdefault(key, SharedRemote(invoke, message["you"]))
        shared.holders = message["workers"]
        shared.weights = message.get("weights") or [1] * len(shared.holders)

    def on_released(self, message: dict[str, Any]) -> None:
        key = key_of(message)
        self.remote.pop(key, None)
        self.shared.pop(key, None)
        self._patterns.discard(key)

    def on_revoked(self, message: dict[str, Any]) -> None:
        """Another node holds this node's URI too and won (nodes.py): the local callees of
        it lose their registrations. A callee that announced ``registration_revocation``
        gets ``UNREGISTERED [67, 0, {registration, reason}]``; the others are not told (the
        spec has no other message for it): logged, their next calls go to the winner."""
        match, uri = key_of(message)
        procedure = self.dealer.registrations.lookup(match, uri)
        for registration in list(procedure.callees if procedure is not None else ()):
            callee = registration.callee
            self.dealer.registrations.remove(callee.session_id, registration.id)
            if isinstance(callee, Revocable) and callee.revokes:
                details = {"registration": registration.id, "reason": PROCEDURE_ALREADY_EXISTS}
                callee.send([UNREGISTERED, 0, details])
            else:
                logger.warning(
                    "dealer relay: %s revoked from session %s (another node holds it)",
                    uri,
                    callee.session_id,
                )

    def on_gone(self, message: dict[str, Any]) -> None:
        """A worker died: its URIs go, calls to it fail (canceled), calls from it end."""
        index = message["worker"]
        for key in [k for k, r in self.remote.items() if r.callee.session_id == worker_key(index)]:
            del self.remote[key]
            self._patterns.discard(key)
        self.dealer.leave(worker_key(index))
        if self.meta is not None:
            self.meta.events.gone(index)

    def on_invoke(self, message: dict[str, Any]) -> None:
        source, request = message["from"], message["id"]
        reply = RelayReply(self.send_up, source, request)
        registration = self._serving(message)
        if registration is None:  # unregistered on the way
            reply.error(NO_SUCH_PROCEDURE, [f"{message['uri']} is not registered"], {})
            return
        arguments = (message["args"], message["kwargs"])
        details = message["details"]
        if not registration.callee.progresses:
            details.pop("receive_progress", None)
        caller = worker_key(source)
        self.dealer.invocations.call(
            registration, caller, request, arguments, details, reply, budget=False
        )

    def _serving(self, message: dict[str, Any]) -> Registration | None:
        """This worker's callee of a relayed call: of the pattern it names, else of the URI."""
        if "match" not in message:
            return self.dealer.registrations.procedure(message["uri"])
        procedure = self.dealer.registrations.lookup(*key_of(message))
        return None if procedure is None else procedure.pick()

    def on_interrupt(self, message: dict[str, Any]) -> None:
        self.dealer.invocations.cancel(worker_key(message["from"]), message["id"], message["mode"])

    def on_answer(self, message: dict[str, Any]) -> None:
        callee, request = worker_key(message["from"]), message["id"]
        args, kwargs, kind = message["args"], message["kwargs"], message["kind"]
        if kind == "error":
            self.dealer.invocations.failed(callee, request, message["uri"], args, kwargs)
        else:
            self.dealer.invocations.yielded(callee, request, args, kwargs, kind == "progress")


class ParentRelay:
    """The parent's end: which workers hold which URI, and forwarding between workers."""

    def __init__(self, forward: Forward) -> None:
        self.forward = forward
        self.held: dict[Key, list[int]] = {}
        """The workers holding each (match, URI), in claim order (several: a shared one)."""
        self.policy: dict[Key, str] = {}
        """Each held (match, URI)'s ``invoke`` policy."""
        self.weights: dict[Key, dict[int, int]] = {}
        """A shared one's callees on each holding worker (1 until it says)."""
        self.alive: set[int] = set()
        self.meta = ParentMeta(forward, self.alive)
        """The meta API's lines: asks, answers, listened topics, events (meta_relay.py)."""

    def joined(self, worker: int) -> None:
        """A worker is up: it learns every URI the others hold."""
        self.alive.add(worker)
        for key in self.held:
            self._announce(key, [worker])
        self.meta.joined(worker)

    def gone(self, worker: int) -> None:
        """A worker died: its URIs are released and the others told."""
        self.alive.discard(worker)
        for key in [k for k, holders in self.held.items() if worker in holders]:
            self._drop(key, worker)
        self._tell_others(worker, {"op": "gone", "worker": worker})
        self.meta.gone(worker)

    def claim(self, worker: int, key: Key, invoke: str) -> bool:
        """Whether ``worker`` may hold (match, URI) ``key``: nobody holds it, the worker
        does, or it is shared (``invoke`` not single) with the same policy."""
        holders = self.held.setdefault(key, [])
        policy = self.policy.setdefault(key, invoke)
        if worker in holders:
            return True
        if holders and (invoke == "single" or policy != invoke):
            return False
        holders.append(worker)
        self._announce(key, sorted(self.alive))
        return True

    def _drop(self, key: Key, worker: int) -> None:
        holders = self.held.get(key, [])
        if worker not in holders:
            return
        holders.remove(worker)
        self.weights.get(key, {}).pop(worker, None)
        if not holders:
            del self.held[key], self.policy[key]
            self.weights.pop(key, None)
        self._announce(key, sorted(self.alive))

    def weigh(self, worker: int, key: Key, callees: int) -> None:
        """A holder of shared ``key`` has ``callees`` of it now: the others weigh it so."""
        if worker in self.held.get(key, ()):
            self.weights.setdefault(key, {})[worker] = callees
            self._announce(key, [w for w in sorted(self.alive) if w != worker])

    def _announce(self, key: Key, to: list[int]) -> None:
        """Tell workers ``to`` who else holds ``key`` (``held``), or that nobody does."""
        holders = self.held.get(key, [])
        match, uri = key
        for target in to:
            others = [h for h in holders if h != target]
            if not others:
                self.forward(target, with_match({"op": "released", "uri": uri}, match))
                continue
            invoke = self.policy[key]
            weights = self.weights.get(key, {})
            message = {"op": "held", "uri": uri, "worker": others[0], "invoke": invoke}
            message |= {"workers": holders, "you": target}
            message["weights"] = [weights.get(holder, 1) for holder in holders]
            self.forward(target, with_match(message, match))

    def received(self, worker: int, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "claim":
            key = key_of(message)
            ok = self.claim(worker, key, message.get("invoke", "single"))
            claimed = {"op": "claimed", "uri": key[1], "ok": ok}
            self.forward(worker, with_match(claimed, key[0]))
        elif op == "release":
            self._drop(key_of(message), worker)
        elif op == "callees":
            self.weigh(worker, key_of(message), int(message["count"]))
        elif op in ("invoke", "interrupt", "answer"):
            target = message.pop("to")
            message["from"] = worker
            if target in self.alive:
                self.forward(target, message)
            elif op == "invoke":  # the callee's worker died meanwhile
                desc = ["the callee's worker is gone"]
                answer = {"op": "answer", "from": target, "id": message["id"], "kind": "error"}
                self.forward(worker, answer | {"uri": CANCELED, "args": desc, "kwargs": {}})
        elif str(op).startswith("meta_"):
            self.meta.received(worker, message)
        else:
            logger.warning("dealer relay: worker %d sent unknown message %r", worker, op)

    def _tell_others(self, worker: int, message: dict[str, Any]) -> None:
        for other in self.alive:
            if other != worker:
                self.forward(other, message)
