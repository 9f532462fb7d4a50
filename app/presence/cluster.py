"""Presence between nodes over RabbitMQ (``presence.nodes.enabled``): no new server.

Every server process is a node with an origin of its own (host, pid, a random tag). Each
publishes its changes (the same ``presence`` lines workers exchange, peers.py) and a heartbeat
every third of ``presence.lease`` to one fanout exchange, and reads everyone's through an
exclusive queue. A node that says ``hello`` gets every other node's members (``presence_sync``).

A node silent for ``presence.lease`` seconds (SIGKILL, power loss, a cut cable) is dead: its
members leave this node's state, and each user's lifecycle events come from the live node
``LifecycleEmitter.emitter`` names, so that one survivor sends them when all see the same nodes.
While this node has no broker, presence is *stale* (``ChannelPresence.stale``): it keeps
what it knew, expires nobody, and on reconnection asks everyone again and gives every peer
a new lease.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import socket
from typing import Any

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractExchange, AbstractIncomingMessage

from gos_web_socket.app.presence.service import Presence
from gos_web_socket.app.server.membership import Liveness
from gos_web_socket.app.transports.amqp.topology import broker_url
from gos_web_socket.settings.presence import PresenceSettings
from gos_web_socket.settings.pushers import AmqpSettings

logger = logging.getLogger(__name__)


class PresenceCluster:
    """This node's link to the others (the presence's ``PeerLink``); inert unless enabled."""

    def __init__(self, amqp: AmqpSettings, settings: PresenceSettings, presence: Presence) -> None:
        self.amqp = amqp
        self.settings = settings
        self.presence = presence
        self.enabled = settings.nodes.enabled
        self.origin = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.live = Liveness(settings.lease, "presence nodes")
        """Live peers by origin (app/server/membership.py: the lease rule the dealer uses too)."""
        self.knows: dict[str, set[str]] = {}
        """What each peer's last heartbeat said it hears: who may emit a dead peer's leaves."""
        self._exchange: AbstractExchange | None = None
        self._task: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()
        self._outgoing: asyncio.Queue[bytes] = asyncio.Queue()
        if self.enabled:
            presence.attach(self, self.origin)
            presence.stale = True  # until the broker answers

    async def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self, within: float = 2.0) -> None:
        """Send what is queued (the leaves of a graceful stop: peers need not wait for the
        lease), at most ``within`` seconds, then leave the exchange."""
        if self._exchange is not None:
            self.send({"op": "presence_bye"})  # after our leaves: peers drop us from the live set
            try:
                await asyncio.wait_for(self._outgoing.join(), within)
            except TimeoutError:
                logger.warning("presence nodes: %d lines unsent at stop", self._outgoing.qsize())
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def send(self, message: dict[str, Any]) -> None:
        """One change of this node to every other (dropped while the broker is away: the
        peers ask again after it is back)."""
        if self._exchange is None:
            return
        self._outgoing.put_nowait(json.dumps(message | {"from": self.origin}).encode())

    async def _send_all(self, exchange: AbstractExchange) -> None:
        """Publish the lines in the order they were made (one publisher)."""
        while True:
            body = await self._outgoing.get()
            try:
                await exchange.publish(aio_pika.Message(body), routing_key="")
            finally:
                self._outgoing.task_done()

    async def _run(self) -> None:
        while True:
            connection: AbstractConnection | None = None
            try:
                connection = await aio_pika.connect(broker_url(self.amqp), timeout=10.0)
                connection.close_callbacks.add(lambda *_: self._lost.set())
                self._lost.clear()
                channel = await connection.channel()
                exchange = await channel.declare_exchange(
                    self.settings.nodes.exchange, aio_pika.ExchangeType.FANOUT, durable=True
                )
                queue = await channel.declare_queue(exclusive=True, auto_delete=True)
                await queue.bind(exchange)
                await queue.consume(self._received, no_ack=True)
                self._exchange = exchange
                sender = asyncio.get_running_loop().create_task(self._send_all(exchange))
                try:
                    self._connected()
                    await self._beat(sender)
                finally:
                    sender.cancel()
                    await asyncio.gather(sender, return_exceptions=True)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("presence nodes: broker away (%r)", exc)
            finally:
                self._exchange = None
                self._outgoing = asyncio.Queue()  # lines of a lost connection: peers ask again
                self.presence.stale = True
                if connection is not None and not connection.is_closed:
                    await connection.close()
            await asyncio.sleep(self.amqp.reconnect_interval)

    def _connected(self) -> None:
        """Back on the broker: every known peer gets a fresh lease; ask everyone's members."""
        self.live.renew()
        self.presence.stale = False
        self.send({"op": "presence_hello"})  # peers forget what we held: it follows
        self._share_all(None)

    def _share_all(self, to: str | None) -> None:
        """This node's members and connections, to one node or (None) to all, then
        ``presence_synced`` (the receivers' held leaves of members not sent again go out)."""
        for change in [*self.presence.snapshot(), {"op": "presence_synced"}]:
            self.send(change if to is None else change | {"to": to})

    async def _beat(self, sender: asyncio.Task[None]) -> None:
        """Heartbeats, and the expiry of silent peers, until the connection is lost."""
        period = self.settings.lease / 3
        while not self._lost.is_set() and not sender.done():
            self.send({"op": "presence_beat", "knows": sorted(self.live.seen)})
            self.expire()
            try:
                await asyncio.wait_for(self._lost.wait(), period)
            except TimeoutError:
                pass

    def expire(self) -> None:
        """Peers silent for the lease are dead (``Liveness.expired``: none when this node's own
        loop is what stood still): their members leave."""
        dead = self.live.expired()
        for origin in dead:
            self.knows.pop(origin, None)
        for origin in dead:
            knew = [peer for peer in self.live.seen if origin in self.knows.get(peer, ())]
            dropped = self.presence.origin_gone(origin, knew)
            logger.warning(
                "presence nodes: %s silent for %s s: %d transitions",
                origin,
                self.settings.lease,
                dropped,
            )

    async def _received(self, message: AbstractIncomingMessage) -> None:
        try:
            line = json.loads(message.body)
            self.received(line)
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("presence nodes: message refused: %r", exc)

    def received(self, line: dict[str, Any]) -> None:
        """One line from the exchange (this node's own come back too: skipped)."""
        origin = str(line["from"])
        if origin == self.origin:
            return
        op, to = line.get("op"), line.get("to")
        if op == "presence_bye":  # a graceful stop: no longer a live origin
            self.live.forget(origin)
            self.presence.origin_gone(origin)
            return
        fresh = self.live.heard(origin)
        self.presence.lifecycle.peer_up(origin)
        if op == "presence_hello":  # it (re)started or came back: it resends its members
            self.presence.origin_reset(origin)
            self._share_all(origin)
            return
        if fresh:  # one we had given up on, or missed: what we hold of it may be partial
            self.presence.origin_reset(origin)
            self.send({"op": "presence_ask", "to": origin})
        if to not in (None, self.origin):
            return
        if op == "presence_beat":
            self.knows[origin] = {str(o) for o in line.get("knows", ())}
        elif op == "presence_ask":
            self._share_all(origin)
        elif op == "presence_synced":
            self.presence.origin_synced(origin)
        elif op == "presence":
            self.presence.remote(origin, line)
