"""The AMQP transport on aio-pika: pusher, server push handler and their shared connection setup.

Delivery is at-least-once from ``push()`` to a topic's ``on_push``: the pusher publishes
persistent messages with a ``message_id`` and waits for the broker's confirm, retrying through
outages until ``push_timeout``; the handler acks only after ``on_push`` returned, rejects failures
into a dead-letter queue, and drops redelivered duplicates by ``message_id``. See docs/amqp.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
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
from aiormq.channel import Channel as AiormqChannel
from aiormq.exceptions import ChannelAccessRefused
from pamqp.commands import Basic
from yarl import URL

from gos_web_socket.app.events import EventDispatcher
from gos_web_socket.app.exceptions import (
    ConfigurationError,
    InvalidPushArgument,
    PushFailed,
    PushHandlerError,
)
from gos_web_socket.app.history import Position
from gos_web_socket.app.message import Message
from gos_web_socket.app.transports.base import (
    Delivery,
    LogReceiver,
    Pusher,
    Receiver,
    ServerPushHandler,
)
from gos_web_socket.settings.models import AmqpSettings

if TYPE_CHECKING:
    from gos_web_socket.app.router import Router

logger = logging.getLogger(__name__)

BasicProperties = Basic.Properties

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


async def declare_exchange(channel: AbstractChannel, settings: AmqpSettings) -> AbstractExchange:
    """GOS's exchange: durable, direct."""
    return await channel.declare_exchange(
        settings.exchange_name, aio_pika.ExchangeType.DIRECT, durable=True
    )


async def declare_queue(
    channel: AbstractChannel,
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


async def adopt_queue(
    channel: AbstractChannel, settings: AmqpSettings, queue_name: str
) -> AbstractQueue:
    """A queue that exists with other arguments, taken as it is (passive) and bound."""
    queue = await channel.declare_queue(queue_name, passive=True)
    for key in settings.binding_keys:
        await queue.bind(settings.exchange_name, key)
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


def build_message(
    message: Message, context: Mapping[str, Any]
) -> tuple[bytes, BasicProperties, str]:
    """Body, AMQP properties and routing key of one push; refuses context it cannot honour.

    Without ``attributes`` (the usual push) the properties are built directly: aio-pika's
    ``Message`` (which validates and converts attributes) costs a tenth of a publish.
    """
    if not context:
        plain = BasicProperties(
            content_type="application/json", delivery_mode=2, message_id=uuid.uuid4().hex
        )
        return message.encode(), plain, ""
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
        amqp_message = aio_pika.Message(message.encode(), **properties)
    except (TypeError, ValueError) as exc:
        raise InvalidPushArgument(f"invalid AMQP attributes: {exc}") from exc
    return amqp_message.body, amqp_message.properties, routing_key


class AmqpPusher(Pusher):
    """Publishes GOS envelopes with confirms over one lazily opened robust connection."""

    name = "amqp"

    def __init__(
        self,
        settings: AmqpSettings,
        router: Router,
        dispatcher: EventDispatcher | Callable[[], EventDispatcher] | None = None,
    ) -> None:
        super().__init__(router, settings=settings, dispatcher=dispatcher)
        self.settings = settings
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None  # strong ref: aio-pika holds it weakly
        self._exchange: AbstractExchange | None = None
        self._lock = asyncio.Lock()

    @property
    def is_connected(self) -> bool:
        return self._connection is not None and self._connection.connected.is_set()

    async def send(self, message: Message, context: dict[str, Any]) -> None:
        body, properties, routing_key = build_message(message, context)
        message_id = properties.message_id
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.push_timeout
        delay = 0.05
        last_error: BaseException | None = None
        while True:
            # One attempt waits at most confirm_timeout: a publish caught by a reconnect can
            # lose its confirm without an error; publishing it again (same message id, which
            # the handler drops if it is a repeat) is the way out.
            attempt_deadline = min(deadline, loop.time() + self.settings.confirm_timeout)
            try:
                async with asyncio.timeout_at(attempt_deadline):
                    exchange = await self._get_exchange(attempt_deadline)
                    robust = self._channel
                    if robust is None or robust.is_closed:
                        raise ChannelInvalidStateError("the pusher's channel is closed")
                    # aiormq's own publish with wait=False: the confirm is what we wait for.
                    # aio-pika's Exchange.publish also waits for the socket to drain under
                    # the channel lock, which serialises concurrent publishes (background
                    # pushes) one loop round trip each.
                    channel = cast(AiormqChannel, await robust.get_underlay_channel())
                    await channel.basic_publish(
                        body,
                        exchange=exchange.name,
                        routing_key=routing_key,
                        properties=properties,
                        mandatory=True,
                        wait=False,
                    )
                return
            except PublishError as exc:
                raise PushFailed(
                    f'AMQP broker could not route the push to "{message.topic}": no queue is '
                    f'bound to exchange "{self.settings.exchange_name}" with routing key '
                    f'"{routing_key}"',
                    transport=self.name,
                    message_id=message_id,
                ) from exc
            except _FATAL as exc:
                await self.disconnect()  # the channel is gone; start afresh on the next push
                raise PushFailed(
                    f"AMQP broker refused the push: {exc}",
                    transport=self.name,
                    message_id=message_id,
                ) from exc
            except TimeoutError as exc:
                last_error = last_error or exc
                logger.debug("AMQP publish of %s unconfirmed, publishing it again", message_id)
            except _TRANSIENT as exc:
                last_error = exc
                logger.debug("AMQP publish failed, retrying: %r", exc)
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise PushFailed(
                    f"AMQP broker at {self.settings.host}:{self.settings.port} did not confirm "
                    f"the push within {self.settings.push_timeout} s: {last_error!r}",
                    transport=self.name,
                    message_id=message_id,
                ) from last_error
            await asyncio.sleep(min(delay, remaining))
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
                        try:
                            await declare_queue(
                                channel, self.settings, exchange, self.settings.queue_name
                            )
                        except ChannelPreconditionFailed:
                            # It exists with other arguments (GOS's PHP server): bind it as it
                            # is, on a fresh channel (the refusal closed this one).
                            channel = await connection.channel(on_return_raises=True)
                            exchange = await declare_exchange(channel, self.settings)
                            await adopt_queue(channel, self.settings, self.settings.queue_name)
                    elif self.settings.queue_mode == "stream":
                        await declare_stream(channel, self.settings, exchange)  # keeps them all
                except BaseException:
                    await connection.close()
                    raise
                self._connection, self._channel, self._exchange = connection, channel, exchange
            return self._exchange

    async def disconnect(self) -> None:
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


DEAD_LETTER_REASON = "x-gos-reject-reason"
"""Header carrying why a push was dead-lettered by the handler itself (on an adopted queue)."""

_SETTLE_ERRORS = (AMQPError, ChannelInvalidStateError, RuntimeError, OSError)
_adopted_logged: set[tuple[str, str]] = set()  # (host, queue): warn once per process


class AmqpDelivery(Delivery):
    """One AMQP message; its ack and reject go to the channel it came on."""

    __slots__ = ("message", "receiver")

    def __init__(self, message: AbstractIncomingMessage, receiver: AmqpReceiver) -> None:
        super().__init__(message.body, message.message_id)
        self.message = message
        self.receiver = receiver

    async def ack(self, multiple: bool = False) -> None:
        try:
            await self.message.ack(multiple=multiple)
        except _SETTLE_ERRORS as exc:
            # Its channel died: the broker redelivers, and dedup keeps the topic from a repeat.
            logger.debug("AMQP ack lost: %r", exc)

    async def reject(self, error: Exception) -> None:
        await self.receiver.dead_letter(self.message, error)


class AmqpReceiver(Receiver):
    """Consumes one queue over a plain (not robust) connection: the supervisor reconnects.

    The topology is declared on open: the exchange, the dead-letter exchange and queue, the
    push queue with ``x-dead-letter-exchange``, and its bindings. A queue that already exists
    with other arguments (GOS's PHP server declared ``gos_websocket`` without any) is adopted
    as it is: consumed after a passive declare, bound, and poison messages are published to
    the dead-letter queue by the receiver (reason in the ``x-gos-reject-reason`` header) and
    then acked.
    """

    acknowledges = True
    acks_multiple = True

    def __init__(
        self, settings: AmqpSettings, queue_name: str, node_id: str, per_node: bool
    ) -> None:
        self.settings = settings
        self.queue_name = queue_name
        self.node_id = node_id
        self.per_node = per_node
        self.max_batch = max(1, settings.prefetch_count // 2)
        self.adopted = False
        """True when the queue was found with other arguments and is consumed as it is."""
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._dead_letters: AbstractChannel | None = None  # with confirms, for adopted queues
        self._queue: AbstractQueue | None = None
        self._consumer_tag: ConsumerTag | None = None
        self._inbox: asyncio.Queue[AbstractIncomingMessage | BaseException | None] = asyncio.Queue()

    @property
    def is_open(self) -> bool:
        return (
            self._consumer_tag is not None
            and self._connection is not None
            and not self._connection.is_closed
            and self._channel is not None
            and not self._channel.is_closed
        )

    async def open(self) -> None:
        where = f"{self.settings.host}:{self.settings.port}"
        try:
            await self._open()
        except (AMQPError, OSError, RuntimeError, TimeoutError) as exc:
            raise PushHandlerError(
                f"AMQP push handler cannot consume {self.queue_name!r} on {where}: {exc!r}"
            ) from exc
        logger.info(
            "AMQP push handler consuming %s on %s%s",
            self.queue_name,
            where,
            " (adopted as it is)" if self.adopted else "",
        )

    async def _connect(self, role: str) -> AbstractChannel:
        """A fresh connection named ``role`` (as the broker's UI lists it) and its channel."""
        self._inbox = asyncio.Queue()
        timeout = self.settings.connect_timeout or self.settings.push_timeout
        connection = await asyncio.wait_for(
            aio_pika.connect(
                broker_url(self.settings),
                client_properties={"connection_name": f"gos {role} {self.node_id}"},
                timeout=timeout,
            ),
            timeout,
        )
        self._connection = connection
        connection.close_callbacks.add(self._on_close)
        return await self._open_channel()

    async def _open(self) -> None:
        self.adopted = False
        channel = await self._connect("push handler")
        connection = self._connection
        assert connection is not None
        exchange = await declare_exchange(channel, self.settings)
        try:
            queue = await declare_queue(
                channel, self.settings, exchange, self.queue_name, per_node=self.per_node
            )
        except ChannelPreconditionFailed as exc:
            # The refusal closed the channel: adopt the queue as it is on a fresh one (that
            # close is expected, so it must not read as a lost connection).
            channel.close_callbacks.discard(self._on_close)
            channel = await self._open_channel()
            self._inbox = asyncio.Queue()
            queue = await adopt_queue(channel, self.settings, self.queue_name)
            self._dead_letters = await connection.channel(publisher_confirms=True)
            self.adopted = True
            if (self.settings.host, self.queue_name) not in _adopted_logged:
                _adopted_logged.add((self.settings.host, self.queue_name))
                logger.warning(
                    "AMQP queue %s exists with other arguments (%s); consuming it as it is. It "
                    "has no broker-side dead-lettering: the handler publishes poison messages "
                    "to %s itself",
                    self.queue_name,
                    exc,
                    self.settings.dead_letter_queue,
                )
        self._queue = queue
        self._consumer_tag = await queue.consume(self._on_message)

    async def _open_channel(self) -> AbstractChannel:
        assert self._connection is not None
        channel = await self._connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=self.settings.prefetch_count)
        channel.close_callbacks.add(self._on_close)
        self._channel = channel
        return channel

    def _on_close(self, sender: object, exc: BaseException | None = None) -> None:
        if sender is self._connection or sender is self._channel:
            self._inbox.put_nowait(exc or ConnectionError("closed by the broker"))

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self._inbox.put_nowait(message)  # before any await: keeps delivery order

    async def receive(self) -> Sequence[Delivery]:
        inbox = self._inbox
        batch: list[Delivery] = []
        item = await inbox.get()
        while True:
            if item is None:  # cancel(): what was taken, then [] from every later call
                inbox.put_nowait(None)  # (aio-pika may hand over a delivery after the cancel)
                return batch
            if isinstance(item, BaseException):
                if batch:  # settle these first (their acks fail; the broker redelivers)
                    inbox.put_nowait(item)
                    return batch
                if self._connection is None:
                    return []  # close() ran
                raise PushHandlerError(f"AMQP connection lost: {item!r}") from item
            batch.append(self._delivery(item))
            if len(batch) >= self.max_batch or inbox.empty():
                return batch
            item = inbox.get_nowait()

    def _delivery(self, message: AbstractIncomingMessage) -> AmqpDelivery:
        return AmqpDelivery(message, self)

    async def dead_letter(self, message: AbstractIncomingMessage, error: Exception) -> None:
        """Reject without requeue, or, on an adopted queue, publish to the DLQ and ack."""
        try:
            if self._dead_letters is None:
                await message.reject(requeue=False)
                return
            headers = dict(message.headers or {})
            headers[DEAD_LETTER_REASON] = str(error)[:1000] or type(error).__name__
            await self._dead_letters.default_exchange.publish(
                aio_pika.Message(
                    message.body,
                    headers=headers,
                    content_type=message.content_type,
                    message_id=message.message_id,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                self.settings.dead_letter_queue,
            )
            await message.ack()
        except _SETTLE_ERRORS as exc:
            logger.debug("AMQP reject lost: %r", exc)  # redelivered, and rejected again

    async def cancel(self) -> None:
        queue, tag = self._queue, self._consumer_tag
        self._consumer_tag = None
        if queue is not None and tag is not None and self._channel is not None:
            if not self._channel.is_closed:
                try:
                    await queue.cancel(tag)
                except _SETTLE_ERRORS as exc:
                    logger.debug("AMQP cancel failed: %r", exc)
        self._inbox.put_nowait(None)

    async def close(self) -> None:
        connection = self._connection
        self._connection = self._channel = self._dead_letters = None
        self._queue, self._consumer_tag = None, None
        self._inbox.put_nowait(None)
        if connection is not None and not connection.is_closed:
            try:
                await connection.close()
            except _SETTLE_ERRORS as exc:
                logger.debug("AMQP close failed: %r", exc)


# -- the stream: every node reads one log from its own offset ---------------------------------

STREAM_OFFSET = "x-stream-offset"


def stream_name(settings: AmqpSettings) -> str:
    return settings.stream.name or f"{settings.queue_name}.stream"


async def declare_stream(
    channel: AbstractChannel, settings: AmqpSettings, exchange: AbstractExchange
) -> AbstractQueue:
    """The stream queue bound to the exchange with the binding keys; retention from settings."""
    arguments: dict[str, Any] = {"x-queue-type": "stream", "x-max-age": settings.stream.max_age}
    if settings.stream.max_length_bytes is not None:
        arguments["x-max-length-bytes"] = settings.stream.max_length_bytes
    queue = await channel.declare_queue(stream_name(settings), durable=True, arguments=arguments)
    for key in settings.binding_keys:
        await queue.bind(exchange, key)
    return queue


def message_identity(offset: int, message: AbstractIncomingMessage) -> str:
    """A short name for the message at ``offset``: its id (or body) and timestamp, hashed."""
    mark = message.message_id or hashlib.sha1(message.body).hexdigest()
    stamp = message.timestamp.timestamp() if message.timestamp else ""
    return hashlib.sha1(f"{offset}:{mark}:{stamp}".encode()).hexdigest()[:16]


def stream_offset(message: AbstractIncomingMessage) -> int:
    offset = (message.headers or {}).get(STREAM_OFFSET)
    if type(offset) is not int:
        raise PushHandlerError(f"stream delivery without an integer {STREAM_OFFSET} header")
    return offset


@dataclass(frozen=True, slots=True)
class SavedOffset:
    """What a node wrote down: the last offset it handled, that message's identity, the epoch."""

    epoch: str
    offset: int
    identity: str


class OffsetFile:
    """A node's position in the stream, in ``<state_dir>/<stream>.<node_name>.json``.

    Written atomically (a temporary file, then ``os.replace``), at most every
    ``stream.save_interval`` seconds while pushes are handled, and at close. A second process
    with the same file is refused (an exclusive ``flock`` on a lock file beside it), since two
    nodes sharing one offset would skip each other's pushes. A lost file makes the node start
    at the stream's end, like a new node (docs/streams.md).
    """

    def __init__(self, directory: Path, stream: str, node_name: str) -> None:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{stream}.{node_name}")
        self.path = directory / f"{safe}.json"
        self._lock: int | None = None
        self._last: SavedOffset | None = None

    def lock(self) -> None:
        """Take the file for this process (ConfigurationError when another holds it)."""
        if self._lock is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ConfigurationError(
                [f"pushers.amqp.stream.state_dir: {self.path.parent}: {exc.strerror}"]
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise ConfigurationError(
                [
                    f"pushers.amqp.stream.node_name: {self.path} is in use by another running "
                    "node; give each node its own node_name or state_dir"
                ]
            ) from None
        self._lock = fd

    def unlock(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def load(self) -> SavedOffset | None:
        try:
            data = json.loads(self.path.read_text())
            saved = SavedOffset(str(data["epoch"]), int(data["offset"]), str(data["identity"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning(
                "stream offset file %s unreadable (%r): starting as a new node", self.path, exc
            )
            return None
        self._last = saved
        return saved

    def save(self, saved: SavedOffset) -> None:
        if saved == self._last:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_text(
                json.dumps(
                    {"epoch": saved.epoch, "offset": saved.offset, "identity": saved.identity}
                )
            )
            os.replace(tmp, self.path)
        except OSError as exc:
            logger.warning("stream offset file %s not written: %r", self.path, exc)
            return
        self._last = saved


class AmqpStreamDelivery(AmqpDelivery):
    """A stream message: acked for the broker's credit, and its offset written down."""

    __slots__ = ()

    receiver: AmqpStreamReceiver

    def __init__(
        self, message: AbstractIncomingMessage, receiver: AmqpStreamReceiver, position: Position
    ) -> None:
        super().__init__(message, receiver)
        self.position = position

    async def ack(self, multiple: bool = False) -> None:
        await super().ack(multiple)
        self.receiver.handled(self)

    async def reject(self, error: Exception) -> None:
        await super().reject(error)
        self.receiver.handled(self)


class AmqpStreamReceiver(AmqpReceiver, LogReceiver):
    """Reads the stream from this node's own offset (``queue_mode: stream``).

    Every node reads every push; nothing is removed by an ack. On open the receiver finds the
    stream's epoch (the identity of its first retained message, so it changes when the stream
    is recreated) and where to start:

    - its offset file names a message the stream still holds at that offset: right after it;
    - no offset file (a new node): at the stream's end (``next``);
    - a file naming a message the stream no longer has at that offset (recreated): the
      stream's beginning, and the epoch changes.

    Streams have no dead-lettering: a poison push is published to the dead-letter queue by the
    receiver (reason in ``x-gos-reject-reason``) and its offset is passed.
    """

    def __init__(self, settings: AmqpSettings, node_id: str) -> None:
        super().__init__(settings, stream_name(settings), node_id, per_node=False)
        self.offsets = OffsetFile(
            settings.stream.state_dir, self.queue_name, settings.stream.state_name()
        )
        self.epoch: str | None = None
        """The stream's epoch; None until the stream holds a message."""
        self.start: int | str = "next"
        """Where the last ``open()`` started reading."""
        self.head: int | None = None
        """The first offset the stream held at the last ``open()``."""
        self.resume_at: int | None = None
        """The first offset this node had not handled; those before it are refills."""
        self._unsaved: AmqpStreamDelivery | None = None
        """The last delivery handled and not yet written down (``stream.save_interval``)."""
        self._saving: asyncio.TimerHandle | None = None

    async def _open(self) -> None:
        self.offsets.lock()
        channel = await self._connect("stream reader")
        connection = self._connection
        assert connection is not None
        exchange = await declare_exchange(channel, self.settings)
        await channel.declare_queue(self.settings.dead_letter_queue, durable=True)
        queue = await declare_stream(channel, self.settings, exchange)
        self._dead_letters = await connection.channel(publisher_confirms=True)
        self.start = await self._start_offset(queue)
        self._queue = queue
        self._consumer_tag = await queue.consume(
            self._on_message, arguments={STREAM_OFFSET: self.start}
        )
        logger.info(
            "AMQP stream %s: epoch %s, reading from %s", self.queue_name, self.epoch, self.start
        )

    @contextlib.asynccontextmanager
    async def _side_read(self, prefetch: int) -> AsyncIterator[AbstractQueue]:
        """The stream on a channel of its own (closed afterwards), beside the node's reader."""
        assert self._connection is not None
        channel = await self._connection.channel(publisher_confirms=False)
        try:
            await channel.set_qos(prefetch_count=prefetch)
            yield await channel.get_queue(self.queue_name, ensure=False)
        finally:
            await channel.close()

    async def probe(self, offset: int | str) -> tuple[int, str] | None:
        """The offset and identity of the first message at ``offset`` or later, if one comes
        within ``stream.probe_timeout``."""
        async with self._side_read(1) as queue:
            first: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()

            async def take(message: AbstractIncomingMessage) -> None:
                if not first.done():
                    at = stream_offset(message)
                    first.set_result((at, message_identity(at, message)))

            await queue.consume(take, arguments={STREAM_OFFSET: offset})
            try:
                return await asyncio.wait_for(first, self.settings.stream.probe_timeout)
            except TimeoutError:
                return None

    async def tail(self) -> int | None:
        """The stream's last offset: the most a reader from ``last`` (its last chunk) gets
        before a quiet 0.2 s (None: the stream is empty)."""
        async with self._side_read(self.settings.prefetch_count) as queue:
            offsets: asyncio.Queue[int] = asyncio.Queue()

            async def take(message: AbstractIncomingMessage) -> None:
                offsets.put_nowait(stream_offset(message))
                await message.ack()

            await queue.consume(take, arguments={STREAM_OFFSET: "last"})
            last: int | None = None
            wait = self.settings.stream.probe_timeout
            while True:
                try:
                    offset = await asyncio.wait_for(offsets.get(), wait)
                except TimeoutError:
                    return last
                last = offset if last is None else max(last, offset)
                wait = 0.2

    async def read_back(self, first: int, last: int) -> Sequence[Delivery]:
        """The stream's messages at ``first``..``last``: a read ends at ``last`` or after
        ``stream.probe_timeout`` without a message (the stream ends)."""
        epoch = self.epoch
        if epoch is None or self._connection is None or last < first:
            return []
        async with self._side_read(self.settings.prefetch_count) as queue:
            read: list[Delivery] = []
            high = [first - 1]  # the last offset kept (a consumer starts at a chunk's start)
            arrived: asyncio.Queue[int] = asyncio.Queue()

            async def take(message: AbstractIncomingMessage) -> None:
                offset = stream_offset(message)
                await message.ack()
                if high[0] < offset <= last:
                    high[0] = offset
                    read.append(Delivery(message.body, message.message_id, Position(epoch, offset)))
                arrived.put_nowait(offset)

            await queue.consume(take, arguments={STREAM_OFFSET: first})
            quiet = self.settings.stream.probe_timeout
            while True:
                try:
                    offset = await asyncio.wait_for(arrived.get(), quiet)
                except TimeoutError:
                    return read
                if offset >= last:
                    return read

    async def _start_offset(self, queue: AbstractQueue) -> int | str:
        """Where to consume from: ``stream.fill`` pushes before the resume point, read back
        (``refill``) so that channel history holds what the node delivered before it stopped."""
        start = await self._choose_start()
        self.resume_at = start if isinstance(start, int) else None
        self.opened_at = None
        if isinstance(start, int) and self.epoch is not None:
            fill = self.settings.stream.fill
            if fill and start > (self.head or 0):
                start = max(start - fill, self.head or 0)
            self.opened_at = Position(self.epoch, start - 1)
        return start

    async def _choose_start(self) -> int | str:
        head = await self.probe("first")
        self.head = head[0] if head else None
        self.epoch = head[1] if head else None
        saved = self.offsets.load()
        if saved is None:
            if head is None:
                return "first"
            tail = await self.tail()  # a new node: after what the stream holds now
            return "next" if tail is None else tail + 1
        if head is not None and saved.epoch == self.epoch:
            return saved.offset + 1
        there = await self.probe(saved.offset) if head is not None else None
        if there == (saved.offset, saved.identity):
            return saved.offset + 1  # the same stream; its head moved (retention)
        logger.warning(
            "AMQP stream %s no longer holds offset %s that this node handled last: it was "
            "recreated; reading it from the beginning (epoch %s -> %s)",
            self.queue_name,
            saved.offset,
            saved.epoch,
            self.epoch,
        )
        return "first"

    def _delivery(self, message: AbstractIncomingMessage) -> AmqpDelivery:
        offset = stream_offset(message)
        if self.epoch is None:  # the stream was empty at open: its first message names it
            self.epoch = message_identity(offset, message)
        delivery = AmqpStreamDelivery(message, self, Position(self.epoch, offset))
        delivery.refill = self.resume_at is not None and offset < self.resume_at
        return delivery

    def handled(self, delivery: AmqpStreamDelivery) -> None:
        """Note the last push the node is done with (not a refill): it is written down within
        ``stream.save_interval`` seconds (a file write per batch cost a tenth of the fan-out)."""
        if delivery.refill:
            return
        self._unsaved = delivery
        if self._saving is None:
            interval = self.settings.stream.save_interval
            self._saving = asyncio.get_running_loop().call_later(interval, self._save)

    def _save(self) -> None:
        self._saving = None
        delivery, self._unsaved = self._unsaved, None
        if delivery is None:
            return
        position = delivery.position
        assert position is not None
        identity = message_identity(position.offset, delivery.message)
        self.offsets.save(SavedOffset(position.epoch, position.offset, identity))

    async def close(self) -> None:
        if self._saving is not None:
            self._saving.cancel()
        self._save()  # what was handled up to now, before the lock goes
        await super().close()
        self.offsets.unlock()


class AmqpServerPushHandler(ServerPushHandler):
    """Consumes the push queue (an ``AmqpReceiver``) and hands every message to its topic.

    Pushes reach topics in queue order. Acks wait until the server wrote the frames, and are
    batched (``multiple=True``, at most ``prefetch_count // 2`` per batch).
    """

    name = "amqp"

    def __init__(
        self,
        settings: AmqpSettings,
        router: Router,
        dispatcher: EventDispatcher,
        node_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.node_id = node_id or default_node_id()
        self.per_node = settings.queue_mode == "per_node"
        self.amqp: AmqpReceiver
        if settings.queue_mode == "stream":
            self.amqp = AmqpStreamReceiver(settings, self.node_id)
        else:
            name = settings.queue_name
            queue_name = f"{name}.{self.node_id}" if self.per_node else name
            self.amqp = AmqpReceiver(settings, queue_name, self.node_id, self.per_node)
        self.queue_name = self.amqp.queue_name
        super().__init__(router, dispatcher, self.amqp, dedup_window=settings.dedup_window)
