"""Calls across nodes (``server.dealer.across_nodes``): several servers on one RabbitMQ.

The same relay as between workers (relay.py): the node's ``WorkerRelay`` keeps the other
nodes' procedures and runs their calls; ``NodeLink`` stands where the parent stands between
workers, with no coordinator: every node (a server, or each worker of one) is a peer.

RabbitMQ: one direct exchange (``exchange_name``), and per node an exclusive, auto-deleted
queue bound with the node's id and with ``all``. Messages are JSON objects, ``from`` the
sender's id:

- to ``all``: ``beat`` (the URIs the node holds, every ``heartbeat`` seconds and at start:
  ``uris`` the exact ones, ``patterns`` the [match, URI] of its prefix and wildcard ones),
  ``claim`` (a URI it wants), ``held`` / ``released`` (a URI it took or gave back), ``bye``
  (it closes: its URIs go and calls to it end now);
- to one node: ``taken`` (an objection to its claim), and the relay's ``invoke``,
  ``interrupt`` and ``answer``.

A URI is a (match, URI) pair as between workers (relay.py): a message naming a prefix or
wildcard registration carries ``match``, one naming an exact URI does not.

A REGISTER claims its URI (``NodeClaims``, node_claims.py: this node's side of the claims)
and waits ``claim_window`` seconds: a node holding the URI objects;
two nodes claiming at once both yield to the smaller node id. Two nodes that hold one URI
all the same (an objection lost or late, a false expiry) find out from each other's ``held``
or ``beat``: the larger id gives it up (its callees are told UNREGISTERED when they announced
``registration_revocation``). A node not heard for
``node_timeout`` seconds is gone: its URIs are released and calls to it end ``canceled``
(calls made before then end with their own timeout at the latest).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage, AbstractRobustConnection

from gos_web_socket.app.server.membership import Liveness
from gos_web_socket.app.server.wamp2.codes import CANCELED
from gos_web_socket.app.server.wamp2.node_claims import EVERYONE, NodeClaims, about
from gos_web_socket.app.server.wamp2.relay import key_of
from gos_web_socket.app.transports.amqp.topology import open_connection
from gos_web_socket.settings.dealer import DealerSettings
from gos_web_socket.settings.models import AmqpSettings

if TYPE_CHECKING:
    from gos_web_socket.app.server.wamp2.dealer import Key
    from gos_web_socket.app.server.wamp2.relay import RelayEnd

logger = logging.getLogger(__name__)

BYE_WITHIN = 2.0
"""Seconds ``close`` waits for its ``bye`` (and what was queued before it) to be published."""


class Outbox:
    """A node's messages in the order they were sent, published by one task (``run``)."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.queue: asyncio.Queue[tuple[str, bytes, dict[str, Any] | None]] = asyncio.Queue()
        """Each message with what the relay is told when it cannot be delivered (an
        ``invoke``: its call fails at once)."""

    def put(self, to: str, message: dict[str, Any]) -> None:
        """Queue one message; JSON raises TypeError / ValueError at once for what it cannot
        carry (MessagePack bytes), as the relay expects."""
        body = json.dumps(message).encode()
        undelivered = None
        if message["op"] == "invoke":
            desc = [f"dealer node {to} cannot be reached"]
            undelivered = {"op": "answer", "from": to, "id": message["id"], "kind": "error"}
            undelivered |= {"uri": CANCELED, "args": desc, "kwargs": {}}
        self.queue.put_nowait((to, body, undelivered))

    def taken(self) -> list[dict[str, Any]]:
        """The messages queued and not published yet, taken out (a link not started)."""
        out = []
        while not self.queue.empty():
            out.append(json.loads(self.queue.get_nowait()[1]))
        return out

    async def run(self, exchange: AbstractExchange, tell: Callable[[dict[str, Any]], None]) -> None:
        """Publish in order; a message to one node is mandatory: when RabbitMQ returns it
        (that node's queue is gone) or the publish fails, an ``invoke`` fails its call at
        once (``tell``: to the relay) instead of after its timeout; other ones are logged."""
        while True:
            key, body, undelivered = await self.queue.get()
            try:
                await exchange.publish(aio_pika.Message(body), key, mandatory=key != EVERYONE)
            except Exception as exc:  # noqa: BLE001  (a returned message raises too)
                logger.warning("dealer node %s: publish to %s failed: %r", self.node, key, exc)
                if undelivered is not None:
                    tell(undelivered)
            finally:
                self.queue.task_done()


class NodeLink:
    """This node's end: claims, announcements, expiry, and relay messages to other nodes."""

    def __init__(self, settings: DealerSettings, amqp: AmqpSettings) -> None:
        self.settings = settings
        self.amqp = amqp
        self.node = uuid.uuid4().hex[:12]
        self._relay: RelayEnd | None = None
        """Where messages for the relay go (``attach``)."""
        self.live = Liveness(settings.node_timeout, f"dealer node {self.node}")
        """Other nodes and when each was last heard (app/server/membership.py: the lease rule
        presence uses too)."""
        self.uris: dict[str, set[Key]] = {}
        """The (match, URI)s each other node holds."""
        self.claims = NodeClaims(self.node, settings, self.uris, self._publish, self._tell_relay)
        """This node's claims and what it holds (node_claims.py)."""
        self.held = self.claims.held
        """The (match, URI)s this node holds."""
        self._connection: AbstractRobustConnection | None = None
        self.outbox = Outbox(self.node)
        self._tasks: list[asyncio.Task[None]] = []

    def attach(self, relay: RelayEnd) -> None:
        """Hand what the other nodes send for the relay (and claim outcomes) to ``relay``."""
        self._relay = relay

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        self._connection = await open_connection(self.amqp, f"gos dealer {self.node}")
        channel = await self._connection.channel(on_return_raises=True)
        exchange = await channel.declare_exchange(
            self.settings.exchange_name, aio_pika.ExchangeType.DIRECT
        )
        queue = await channel.declare_queue(
            f"{self.settings.exchange_name}.{self.node}", exclusive=True, auto_delete=True
        )
        for key in (self.node, EVERYONE):
            await queue.bind(exchange, key)
        await queue.consume(self._delivered, no_ack=True)
        self._tasks = [
            asyncio.create_task(self.outbox.run(exchange, self._tell_relay)),
            asyncio.create_task(self._beat_and_expire()),
        ]
        logger.info("dealer node %s on exchange %s", self.node, self.settings.exchange_name)

    async def close(self) -> None:
        """Say ``bye`` (the others release this node's URIs and end its calls at once, not
        after ``node_timeout``), then stop claiming, beating and publishing."""
        if self._tasks:
            self.held.clear()
            self._publish(EVERYONE, {"op": "bye"})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.outbox.queue.join(), BYE_WITHIN)
        claiming = self.claims.claiming
        for task in [*claiming, *self._tasks]:
            task.cancel()
        await asyncio.gather(*claiming, *self._tasks, return_exceptions=True)
        if self._connection is not None:
            await self._connection.close()

    # -- the relay's messages (WorkerRelay's ``send_up``) ---------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        """What the relay sends to "the parent": a claim, a release, or a message to a node."""
        op = message["op"]
        if op == "claim":
            self.claims.claim(key_of(message))
        elif op == "release":
            self.claims.release(key_of(message))
        else:
            self._publish(message.pop("to"), message)

    # -- from RabbitMQ ---------------------------------------------------------------------------

    async def _delivered(self, delivery: AbstractIncomingMessage) -> None:
        try:
            message = json.loads(delivery.body)
            if message.get("from") != self.node:
                self.received(message)
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("dealer node %s: message refused: %r", self.node, exc)

    def received(self, message: dict[str, Any]) -> None:
        """One message from another node."""
        op, source = message["op"], message["from"]
        if op in ("beat", "held", "released", "claim", "taken", "bye"):
            handler: Callable[[str, dict[str, Any]], None] = getattr(self, f"on_{op}")
            handler(source, message)
        else:  # invoke, interrupt, answer: the relay's
            self._tell_relay(message)

    def on_beat(self, source: str, message: dict[str, Any]) -> None:
        keys = {("exact", uri) for uri in message["uris"]}
        keys |= {(match, uri) for match, uri in message.get("patterns", ())}
        known = self._heard(source)
        for key in known - keys:
            self._forget(source, key)
        for key in keys & self.held:
            self.claims.contest(source, key)
        for key in keys - known:
            self.on_held(source, about("held", key))

    def on_held(self, source: str, message: dict[str, Any]) -> None:
        key = key_of(message)
        self.claims.contest(source, key)
        known = self._heard(source)
        known.add(key)
        self._tell_relay(about("held", key) | {"worker": source})

    def on_bye(self, source: str, message: dict[str, Any]) -> None:
        """``source`` closes: gone now rather than after ``node_timeout``."""
        if source in self.live:
            self.expire(source)

    def on_released(self, source: str, message: dict[str, Any]) -> None:
        self._forget(source, key_of(message))

    def on_claim(self, source: str, message: dict[str, Any]) -> None:
        """Another node wants a URI (``NodeClaims.answer``)."""
        key = key_of(message)
        self._heard(source)
        self.claims.answer(source, key)

    def on_taken(self, source: str, message: dict[str, Any]) -> None:
        self.claims.lose(key_of(message))

    # -- heartbeats and expiry -------------------------------------------------------------------

    async def _beat_and_expire(self) -> None:
        while True:
            self._publish(EVERYONE, self.beat())
            self.expire_silent()
            await asyncio.sleep(self.settings.heartbeat)

    def beat(self) -> dict[str, Any]:
        """The ``beat``: every (match, URI) this node holds (exact ones as bare URIs)."""
        exact = sorted(uri for match, uri in self.held if match == "exact")
        patterns = sorted([match, uri] for match, uri in self.held if match != "exact")
        return {"op": "beat", "uris": exact, "patterns": patterns}

    def expire_silent(self) -> None:
        """The nodes silent for ``node_timeout`` are gone (``Liveness.expired``: none when
        this node's own loop is what stood still that long)."""
        for node in self.live.expired():
            self.expire(node)

    def expire(self, node: str) -> None:
        """``node`` is gone: its URIs go, calls to it end canceled, calls from it end."""
        self.live.forget(node)
        keys = self.uris.pop(node, set())
        logger.warning(
            "dealer node %s: node %s is gone (%d procedures)", self.node, node, len(keys)
        )
        for key in keys:
            self._tell_relay(about("released", key))
        self._tell_relay({"op": "gone", "worker": node})

    # -- helpers ---------------------------------------------------------------------------------

    def _heard(self, node: str) -> set[Key]:
        """``node`` is live (its lease starts again); the (match, URI)s it holds."""
        self.live.heard(node)
        return self.uris.setdefault(node, set())

    def _forget(self, node: str, key: Key) -> None:
        keys = self.uris.get(node)
        if keys is not None and key in keys:
            keys.discard(key)
            self._tell_relay(about("released", key))

    def _tell_relay(self, message: dict[str, Any]) -> None:
        if self._relay is not None:
            self._relay.received(message)

    def _publish(self, to: str, message: dict[str, Any]) -> None:
        self.outbox.put(to, message | {"from": self.node})


async def linked(link: NodeLink | None, *after: object) -> AsyncIterator[NodeLink | None]:
    """The node link connected for as long as the resource lives (``after``: resources
    started first); None: this node is alone."""
    if link is None:
        yield None
        return
    await link.start()
    try:
        yield link
    finally:
        await link.close()
