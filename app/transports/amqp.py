"""The AMQP transport on aio-pika: pusher, server push handler and their shared connection setup.

Delivery is at-least-once from ``push()`` to a topic's ``on_push``: the pusher publishes
persistent messages with a ``message_id`` and waits for the broker's confirm, retrying through
outages until ``push_timeout``; the handler acks only after ``on_push`` returned, rejects failures
into a dead-letter queue, and drops redelivered duplicates by ``message_id``. See docs/amqp.md.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import aio_pika
from aio_pika.abc import (
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
    ConsumerTag,
)
from aio_pika.exceptions import (
    AMQPError,
    AuthenticationError,
    ChannelInvalidStateError,
    ChannelPreconditionFailed,
    PublishError,
)
from aiormq.exceptions import ChannelAccessRefused
from yarl import URL

from app.events import EventDispatcher
from app.exceptions import InvalidPushArgument, PushFailed, PushHandlerError
from app.message import Message
from app.transports.base import PushableServer, Pusher, ServerPushHandler
from settings.models import AmqpSettings

if TYPE_CHECKING:
    from app.router import Router

logger = logging.getLogger(__name__)

# php-amqp's publish flags, accepted in ``context["publish_flags"]`` as GOS passed them.
AMQP_NOPARAM = 0
AMQP_MANDATORY = 1024
AMQP_IMMEDIATE = 2048

CONTEXT_KEYS = ("routing_key", "publish_flags", "attributes")
ATTRIBUTE_KEYS = (
    "app_id",
    "content_encoding",
    "content_type",
    "correlation_id",
    "delivery_mode",
    "expiration",
    "headers",
    "message_id",
    "priority",
    "reply_to",
    "timestamp",
    "type",
    "user_id",
)

# Errors that retrying cannot fix: fail the push at once instead of waiting for the deadline.
_FATAL = (PublishError, ChannelPreconditionFailed, ChannelAccessRefused, AuthenticationError)
# What a broker outage or a reconnect looks like from a publish or a connect.
_TRANSIENT = (AMQPError, ConnectionError, OSError, RuntimeError)


# -- connection setup shared by both sides ---------------------------------------------------


def broker_url(settings: AmqpSettings) -> URL:
    """The broker address; credentials default to guest as on a fresh RabbitMQ."""
    password = settings.password.get_secret_value() if settings.password else "guest"
    return URL.build(
        scheme="amqp",
        host=settings.host,
        port=settings.port,
        user=settings.login or "guest",
        password=password,
        path="/" + settings.vhost,
    )


async def open_connection(
    settings: AmqpSettings, name: str, within: float | None = None
) -> AbstractRobustConnection:
    """Connect once, raising if the broker is away; afterwards aio-pika reconnects by itself.

    The connection object is built here rather than by ``connect_robust`` so that a failed or
    cancelled first attempt closes it and leaves no reconnect task behind.
    """
    timeout = within
    if settings.connect_timeout:
        timeout = min(within or settings.connect_timeout, settings.connect_timeout)
    connection = aio_pika.RobustConnection(
        broker_url(settings),
        client_properties={"connection_name": name},
        reconnect_interval=settings.reconnect_interval,
    )
    try:
        await asyncio.wait_for(connection.connect(timeout=timeout), timeout)
    except BaseException:
        await connection.close()
        raise
    return connection


async def declare_exchange(
    channel: AbstractRobustChannel, settings: AmqpSettings
) -> AbstractExchange:
    """GOS's exchange: durable, direct."""
    return await channel.declare_exchange(
        settings.exchange_name, aio_pika.ExchangeType.DIRECT, durable=True
    )


async def declare_queue(
    channel: AbstractRobustChannel,
    settings: AmqpSettings,
    exchange: AbstractExchange,
    queue_name: str,
    *,
    per_node: bool = False,
) -> AbstractQueue:
    """The push queue with its dead-letter route and the binding GOS never made.

    All declarations are robust, so aio-pika redeclares them after a broker restart. A node's
    own queue expires ``node_queue_expires`` ms after its last consumer went away.
    """
    dlx = await channel.declare_exchange(
        settings.dead_letter_exchange, aio_pika.ExchangeType.FANOUT, durable=True
    )
    dlq = await channel.declare_queue(settings.dead_letter_queue, durable=True)
    await dlq.bind(dlx, "")
    arguments: dict[str, Any] = {"x-dead-letter-exchange": settings.dead_letter_exchange}
    if per_node:
        arguments["x-expires"] = settings.node_queue_expires
    queue = await channel.declare_queue(queue_name, durable=True, arguments=arguments)
    for key in settings.binding_keys:
        await queue.bind(exchange, key)
    return queue


# -- the pusher ------------------------------------------------------------------------------


def _publish_flags(value: Any) -> None:
    """Check GOS's ``publish_flags``: mandatory is always on, immediate RabbitMQ never had."""
    if value is None:
        return
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - {"mandatory", "immediate"})
        if unknown:
            raise InvalidPushArgument(
                f"unknown publish_flags key(s) {', '.join(unknown)}; allowed: mandatory, immediate"
            )
        mandatory, immediate = value.get("mandatory", True), value.get("immediate", False)
    elif isinstance(value, int) and not isinstance(value, bool):
        if value & ~(AMQP_MANDATORY | AMQP_IMMEDIATE):
            raise InvalidPushArgument(
                f"publish_flags {value} has unknown bits; allowed: AMQP_NOPARAM (0), "
                f"AMQP_MANDATORY ({AMQP_MANDATORY})"
            )
        mandatory, immediate = True, bool(value & AMQP_IMMEDIATE)
    else:
        raise InvalidPushArgument("publish_flags must be an int or a mapping")
    if immediate:
        raise InvalidPushArgument("publish_flags: immediate is not supported by RabbitMQ")
    if not mandatory:
        raise InvalidPushArgument(
            "publish_flags: mandatory cannot be turned off, an unroutable push would be lost"
        )


def build_message(message: Message, context: Mapping[str, Any]) -> tuple[aio_pika.Message, str]:
    """The AMQP message and routing key for one push; refuses context it cannot honour."""
    unknown = sorted(set(context) - set(CONTEXT_KEYS))
    if unknown:
        raise InvalidPushArgument(
            f"unknown context option(s) {', '.join(unknown)}; allowed: {', '.join(CONTEXT_KEYS)}"
        )
    routing_key = context.get("routing_key") or ""
    if not isinstance(routing_key, str):
        raise InvalidPushArgument("routing_key must be a string")
    _publish_flags(context.get("publish_flags"))
    attributes = dict(context.get("attributes") or {})
    unknown = sorted(set(attributes) - set(ATTRIBUTE_KEYS))
    if unknown:
        raise InvalidPushArgument(
            f"unknown attribute(s) {', '.join(unknown)}; allowed: {', '.join(ATTRIBUTE_KEYS)}"
        )
    expiration = attributes.get("expiration")
    if expiration is not None and not isinstance(expiration, timedelta):
        try:  # php-amqp and the AMQP spec give it as milliseconds, usually a string
            attributes["expiration"] = timedelta(milliseconds=int(expiration))
        except (TypeError, ValueError):
            raise InvalidPushArgument("expiration must be milliseconds or a timedelta") from None
    properties: dict[str, Any] = {
        "content_type": "application/json",
        "delivery_mode": aio_pika.DeliveryMode.PERSISTENT,
        "message_id": uuid.uuid4().hex,
        **attributes,
    }
    try:
        return aio_pika.Message(message.encode(), **properties), routing_key
    except (TypeError, ValueError) as exc:
        raise InvalidPushArgument(f"invalid AMQP attributes: {exc}") from exc


class AmqpPusher(Pusher):
    """Publishes GOS envelopes with confirms over one lazily opened robust connection."""

    name = "amqp"

    def __init__(self, settings: AmqpSettings, router: Router) -> None:
        super().__init__(router)
        self.settings = settings
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None  # strong ref: aio-pika holds it weakly
        self._exchange: AbstractExchange | None = None
        self._lock = asyncio.Lock()

    @property
    def is_connected(self) -> bool:
        return self._connection is not None and self._connection.connected.is_set()

    async def _do_push(self, message: Message, context: dict[str, Any]) -> None:
        amqp_message, routing_key = build_message(message, context)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.push_timeout
        delay = 0.05
        last_error: BaseException | None = None
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    exchange = await self._get_exchange(deadline)
                    await exchange.publish(amqp_message, routing_key, mandatory=True)
                return
            except PublishError as exc:
                raise PushFailed(
                    f'AMQP broker could not route the push to "{message.topic}": no queue is '
                    f'bound to exchange "{self.settings.exchange_name}" with routing key '
                    f'"{routing_key}"',
                    transport=self.name,
                ) from exc
            except _FATAL as exc:
                await self.close()  # the channel is gone; start afresh on the next push
                raise PushFailed(
                    f"AMQP broker refused the push: {exc}", transport=self.name
                ) from exc
            except TimeoutError as exc:
                last_error = last_error or exc
            except _TRANSIENT as exc:
                last_error = exc
                logger.debug("AMQP publish failed, retrying: %r", exc)
            if loop.time() + delay >= deadline:
                raise PushFailed(
                    f"AMQP broker at {self.settings.host}:{self.settings.port} did not confirm "
                    f"the push within {self.settings.push_timeout} s: {last_error!r}",
                    transport=self.name,
                ) from last_error
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def _get_exchange(self, deadline: float) -> AbstractExchange:
        if self._exchange is not None:
            return self._exchange
        async with self._lock:
            if self._exchange is None:
                timeout = max(deadline - asyncio.get_running_loop().time(), 0.001)
                connection = await open_connection(self.settings, "gos pusher", timeout)
                try:
                    channel = await connection.channel(on_return_raises=True)
                    exchange = await declare_exchange(channel, self.settings)
                    if self.settings.queue_mode == "shared":
                        # The shared queue buffers pushes made before any server ever started.
                        await declare_queue(
                            channel, self.settings, exchange, self.settings.queue_name
                        )
                except BaseException:
                    await connection.close()
                    raise
                self._connection, self._channel, self._exchange = connection, channel, exchange
            return self._exchange

    async def close(self) -> None:
        """Close the connection; the next push opens a new one."""
        connection = self._connection
        self._connection = self._channel = self._exchange = None
        if connection is not None:
            await connection.close()

    def _forget_connection(self) -> None:
        self._connection = self._channel = self._exchange = None
        self._lock = asyncio.Lock()


# -- the server push handler -----------------------------------------------------------------


def default_node_id() -> str:
    """Unique per process: host, pid and a random suffix (a restarted node gets a new queue)."""
    return f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}"


class AmqpServerPushHandler(ServerPushHandler):
    """Consumes the push queue and hands every message to its topic, in order.

    Deliveries go through a local FIFO to one worker task, so pushes reach topics in queue
    order. Acks are batched (``multiple=True``) while the FIFO holds more work.
    """

    name = "amqp"

    def __init__(
        self,
        settings: AmqpSettings,
        router: Router,
        dispatcher: EventDispatcher,
        node_id: str | None = None,
    ) -> None:
        super().__init__(router, dispatcher)
        self.settings = settings
        self.node_id = node_id or default_node_id()
        self.per_node = settings.queue_mode == "per_node"
        self.queue_name = (
            f"{settings.queue_name}.{self.node_id}" if self.per_node else settings.queue_name
        )
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._queue: AbstractQueue | None = None
        self._consumer_tag: ConsumerTag | None = None
        self._inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._unacked: AbstractIncomingMessage | None = None
        self._unacked_count = 0
        self._ack_batch = max(1, settings.prefetch_count // 2)
        self._seen: OrderedDict[str, bool] = OrderedDict()  # message_id -> delivered

    @property
    def is_consuming(self) -> bool:
        return (
            self._worker is not None
            and not self._worker.done()
            and self._connection is not None
            and self._connection.connected.is_set()
            and self._channel is not None
            and not self._channel.is_closed
        )

    async def start(self, app: PushableServer) -> None:
        """Declare the topology and consume; raises PushHandlerError if the broker is away."""
        if self._worker is not None:
            raise PushHandlerError("AMQP push handler is already started")
        try:
            self._connection = await open_connection(
                self.settings, f"gos push handler {self.node_id}", self.settings.push_timeout
            )
            self._channel = await self._connection.channel(publisher_confirms=False)
            await self._channel.set_qos(prefetch_count=self.settings.prefetch_count)
            exchange = await declare_exchange(self._channel, self.settings)
            self._queue = await declare_queue(
                self._channel, self.settings, exchange, self.queue_name, per_node=self.per_node
            )
            self._inbox = asyncio.Queue()
            self._worker = asyncio.create_task(self._work(app), name=f"amqp-push-{self.node_id}")
            self._consumer_tag = await self._queue.consume(self._on_message)
        except (AMQPError, OSError, RuntimeError) as exc:
            await self.close()
            raise PushHandlerError(
                f"AMQP push handler cannot consume {self.queue_name!r} on "
                f"{self.settings.host}:{self.settings.port}: {exc!r}"
            ) from exc
        logger.info("AMQP push handler consuming %s on %s", self.queue_name, self.settings.host)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self._inbox.put_nowait(message)  # before any await: keeps delivery order

    async def _work(self, app: PushableServer) -> None:
        inbox = self._inbox
        while True:
            message = await inbox.get()
            try:
                await self._process(app, message)
                if inbox.empty():
                    await self._flush_acks()
            except Exception:  # never let one message stop the consumer
                logger.exception("AMQP push handler failed on a message")

    async def _process(self, app: PushableServer, message: AbstractIncomingMessage) -> None:
        message_id = message.message_id
        if message_id is not None and message_id in self._seen:
            if self._seen[message_id]:
                await self._ack(message)  # a redelivered duplicate: the topic had it already
            else:
                await self._reject(message)
            return
        try:
            await self.handle_body(app, message.body)
        except Exception:  # handle_body fired push_fail already
            self._remember(message_id, False)
            await self._reject(message)
            return
        self._remember(message_id, True)
        await self._ack(message)

    def _remember(self, message_id: str | None, delivered: bool) -> None:
        if message_id is None or not self.settings.dedup_window:
            return
        self._seen[message_id] = delivered
        if len(self._seen) > self.settings.dedup_window:
            self._seen.popitem(last=False)

    async def _ack(self, message: AbstractIncomingMessage) -> None:
        self._unacked = message
        self._unacked_count += 1
        if self._unacked_count >= self._ack_batch:
            await self._flush_acks()

    async def _flush_acks(self) -> None:
        message, self._unacked, self._unacked_count = self._unacked, None, 0
        if message is None:
            return
        try:
            await message.ack(multiple=True)
        except (AMQPError, ChannelInvalidStateError, RuntimeError) as exc:
            # Its channel died: the broker redelivers, and dedup keeps the topic from a repeat.
            logger.debug("AMQP ack lost: %r", exc)

    async def _reject(self, message: AbstractIncomingMessage) -> None:
        await self._flush_acks()  # keep acks ahead of the reject, in delivery order
        try:
            await message.reject(requeue=False)
        except (AMQPError, ChannelInvalidStateError, RuntimeError) as exc:
            logger.debug("AMQP reject lost: %r", exc)

    async def close(self) -> None:
        """Stop consuming, ack what was handled, and close; unhandled deliveries go back."""
        queue, tag = self._queue, self._consumer_tag
        self._queue, self._consumer_tag = None, None
        if queue is not None and tag is not None:
            try:
                await queue.cancel(tag)
            except (AMQPError, ChannelInvalidStateError, RuntimeError, OSError) as exc:
                logger.debug("AMQP cancel failed: %r", exc)
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
        await self._flush_acks()
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            await connection.close()
