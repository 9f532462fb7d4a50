"""AMQP topology and connection setup that the pusher and the receivers share.

The broker address, one robust connection, GOS's exchange, the push queue with its
dead-letter route (or an existing queue adopted as it is), the stream, and php-amqp's publish
flags as GOS's callers pass them. See docs/amqp.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractQueue,
    AbstractRobustConnection,
)
from aio_pika.exceptions import AMQPError, ChannelPreconditionFailed
from yarl import URL

from gos_web_socket.app.exceptions import InvalidPushArgument
from gos_web_socket.settings.models import AmqpSettings

__all__ = [
    "AMQP_IMMEDIATE",
    "AMQP_MANDATORY",
    "AMQP_NOPARAM",
    "BrokerRing",
    "NodesConnection",
    "adopt_queue",
    "broker_url",
    "check_publish_flags",
    "connect_any",
    "declare_dead_letters",
    "declare_exchange",
    "declare_queue",
    "declare_stream",
    "open_connection",
    "stream_name",
    "where",
]

# php-amqp's publish flags, accepted in ``context["publish_flags"]`` as GOS passed them.
AMQP_NOPARAM = 0
AMQP_MANDATORY = 1024
AMQP_IMMEDIATE = 2048


def broker_url(settings: AmqpSettings, address: tuple[str, int] | None = None) -> URL:
    """A broker's address (the first of ``settings.addresses`` unless given); credentials
    default to guest as on a fresh RabbitMQ."""
    password = settings.password.get_secret_value() if settings.password else "guest"
    host, port = address or settings.addresses[0]
    return URL.build(
        scheme="amqp",
        host=host,
        port=port,
        user=settings.login or "guest",
        password=password,
        path="/" + settings.vhost,
    )


def where(settings: AmqpSettings) -> str:
    """The brokers as a log line names them: ``host:port, host:port``."""
    return ", ".join(f"{host}:{port}" for host, port in settings.addresses)


class BrokerRing:
    """The brokers of ``settings.addresses`` in the order connections try them: every attempt
    takes the next one, so after a node failed or was left the others come first.

    The one rotation that the pusher's robust connection (``NodesConnection``) and the
    receivers' plain connections (``connect_any``) share.
    """

    def __init__(self, settings: AmqpSettings) -> None:
        self.urls = [broker_url(settings, address) for address in settings.addresses]
        self.at = 0
        """Index of the broker the next attempt takes."""
        self.current = self.urls[0]
        """The broker of the last attempt (the first one before any)."""
        self.attempts = 0

    def next(self) -> URL:
        """The broker for a new connection attempt (the ring moves on)."""
        self.current = self.urls[self.at]
        self.at = (self.at + 1) % len(self.urls)
        self.attempts += 1
        return self.current

    def where(self) -> str:
        """The last attempt's broker as ``host:port``."""
        return f"{self.current.host}:{self.current.port}"

    def with_password(self, password: str | None) -> None:
        """New credentials (``update_secret``) go to every broker."""
        self.urls = [url.with_password(password) for url in self.urls]
        self.current = self.current.with_password(password)


class NodesConnection(aio_pika.RobustConnection):
    """A robust connection over a ``BrokerRing``: each attempt, the first and every reconnect,
    goes to the ring's next broker.

    aio-pika takes one URL (aio-pika #141) and its reconnect loop has no hook per attempt: it
    calls ``Connection.connect`` of its base class directly, which reads ``self.url`` once to
    dial. So ``url`` takes ``ring.next()`` only while an attempt is under way (no transport
    yet, the constructor done); any other read (``update_secret``, the constructor's own)
    gets the current broker. tests/amqp/test_nodes.py holds aio-pika to this (one read per
    attempt, in ring order).
    """

    def __init__(self, ring: BrokerRing, **kwargs: Any) -> None:
        self.ring = ring
        self._built = False
        super().__init__(ring.current, **kwargs)
        self._built = True

    @property
    def url(self) -> URL:
        if self._built and self.transport is None:  # Connection.connect dialling
            return self.ring.next()
        return self.ring.current

    @url.setter
    def url(self, value: URL) -> None:
        """aio-pika's constructor and ``update_secret`` set it: the credentials go to all."""
        self.ring.with_password(value.password)

    def __str__(self) -> str:
        nodes = ", ".join(f"{url.host}:{url.port}" for url in self.ring.urls)
        return f"amqp://[{nodes}]"


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
    ring = BrokerRing(settings)
    for attempt in range(len(ring.urls)):  # the first attempt tries each node in turn
        connection = NodesConnection(
            ring,
            client_properties={"connection_name": name},
            reconnect_interval=settings.reconnect_interval,
        )
        try:
            await asyncio.wait_for(connection.connect(timeout=timeout), timeout)
        except BaseException as exc:
            await connection.close()
            if attempt == len(ring.urls) - 1 or not isinstance(exc, Exception):
                raise
            continue
        return connection
    raise AssertionError("unreachable: the last node's failure was raised")


async def connect_any(settings: AmqpSettings, ring: BrokerRing, name: str) -> AbstractConnection:
    """A plain connection named ``name`` to the first broker of ``ring`` that answers, tried
    in ring order (a node that died, or the one used last, is tried last).

    Raises:
        ConnectionError: every broker failed (each one's error listed).
    """
    timeout = settings.connect_timeout or settings.push_timeout
    errors: list[str] = []
    for _ in range(len(ring.urls)):
        url = ring.next()
        try:
            return await asyncio.wait_for(
                aio_pika.connect(url, client_properties={"connection_name": name}, timeout=timeout),
                timeout,
            )
        except (AMQPError, OSError, RuntimeError, TimeoutError) as exc:
            if len(ring.urls) == 1:
                raise
            errors.append(f"{ring.where()}: {exc!r}")
    raise ConnectionError("; ".join(errors))


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
    """The push queue, dead-lettering to ``dead_letter_exchange``, and the binding GOS never
    made (``declare_dead_letters`` declares the exchange and its queue).

    All declarations are robust, so aio-pika redeclares them after a broker restart. A node's
    own queue expires ``node_queue_expires`` ms after its last consumer went away.
    """
    arguments: dict[str, Any] = {"x-dead-letter-exchange": settings.dead_letter_exchange}
    if per_node:
        arguments["x-expires"] = settings.node_queue_expires
    if settings.queue_type == "quorum":  # replicated; an existing classic queue is adopted
        arguments["x-queue-type"] = "quorum"
        if settings.delivery_limit is not None:
            arguments["x-delivery-limit"] = settings.delivery_limit
    queue = await channel.declare_queue(queue_name, durable=True, arguments=arguments)
    for key in settings.binding_keys:
        await queue.bind(exchange, key)
    return queue


async def declare_dead_letters(connection: AbstractConnection, settings: AmqpSettings) -> None:
    """The dead-letter exchange (fanout) and its bound queue, of ``queue_type``.

    A quorum dead-letter queue is replicated, so a handler moving off a dead node can declare
    it on another; a classic one is homed on the node that declared it first, and declaring
    it elsewhere fails (NOT_FOUND, home node down) until that node is back. A dead-letter
    queue that exists with other arguments (classic, from before ``queue_type: quorum``) is
    kept as it is: the refusal closes only the channel of its own these declarations use.
    """
    channel = await connection.channel()
    try:
        dlx = await channel.declare_exchange(
            settings.dead_letter_exchange, aio_pika.ExchangeType.FANOUT, durable=True
        )
        arguments: dict[str, Any] = {}
        if settings.queue_type == "quorum":
            arguments["x-queue-type"] = "quorum"
        try:
            dlq = await channel.declare_queue(
                settings.dead_letter_queue, durable=True, arguments=arguments
            )
        except ChannelPreconditionFailed:
            channel = await connection.channel()
            dlq = await channel.declare_queue(settings.dead_letter_queue, passive=True)
        await dlq.bind(dlx, "")
    finally:
        await channel.close()


async def adopt_queue(
    channel: AbstractChannel, settings: AmqpSettings, queue_name: str
) -> AbstractQueue:
    """A queue that exists with other arguments, taken as it is (passive) and bound."""
    queue = await channel.declare_queue(queue_name, passive=True)
    for key in settings.binding_keys:
        await queue.bind(settings.exchange_name, key)
    return queue


def stream_name(settings: AmqpSettings) -> str:
    return settings.stream.name or f"{settings.queue_name}.stream"


async def declare_stream(
    channel: AbstractChannel, settings: AmqpSettings, exchange: AbstractExchange
) -> AbstractQueue:
    """The stream queue bound to the exchange with the binding keys; retention from settings."""
    arguments: dict[str, Any] = {"x-queue-type": "stream", "x-max-age": settings.stream.max_age}
    if settings.stream.max_length_bytes is not None:
        arguments["x-max-length-bytes"] = settings.stream.max_length_bytes
    if settings.stream.initial_cluster_size is not None:
        arguments["x-initial-cluster-size"] = settings.stream.initial_cluster_size
    queue = await channel.declare_queue(stream_name(settings), durable=True, arguments=arguments)
    for key in settings.binding_keys:
        await queue.bind(exchange, key)
    return queue


def check_publish_flags(value: Any) -> None:
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
