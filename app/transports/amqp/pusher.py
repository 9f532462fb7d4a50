"""The AMQP pusher: persistent messages with a ``message_id``, confirmed by the broker.

It retries through outages (connection and channel errors) until ``push_timeout``; errors that
retrying cannot fix (unroutable, refused, a bug) fail the push at once. See docs/amqp.md.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractRobustChannel, AbstractRobustConnection
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

from gos_web_socket.app.backoff import Backoff
from gos_web_socket.app.exceptions import InvalidPushArgument, PushFailed
from gos_web_socket.app.message import Message
from gos_web_socket.app.transports.amqp.topology import (
    adopt_queue,
    check_publish_flags,
    declare_dead_letters,
    declare_exchange,
    declare_queue,
    declare_stream,
    open_connection,
    where,
)
from gos_web_socket.app.transports.pusher import Pusher
from gos_web_socket.settings.models import AmqpSettings

if TYPE_CHECKING:
    from gos_web_socket.app.events import EventDispatcher
    from gos_web_socket.app.router import Router

__all__ = ["ATTRIBUTE_KEYS", "CONTEXT_KEYS", "AmqpPusher", "build_message"]

logger = logging.getLogger(__name__)

BasicProperties = Basic.Properties

RETRY_FIRST = 0.05
"""Seconds before a publish is tried again after an outage; doubled each time..."""
RETRY_CAP = 1.0
"""... up to this (the whole push is bounded by ``push_timeout``)."""

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
# What a broker outage or a reconnect looks like from a publish or a connect. aio-pika also
# raises a plain RuntimeError ("Connection was not opened", "... closed") while it reconnects:
# that one is retried only while the pusher has no open connection (``send``), since a
# RuntimeError on a working connection is a bug, which would only wait out push_timeout.
_TRANSIENT = (AMQPError, ConnectionError, OSError, ChannelInvalidStateError)


def _size_hint(exc: BaseException) -> str:
    """Name the setting when the broker refused a body for its size (RabbitMQ's 406)."""
    if isinstance(exc, ChannelPreconditionFailed) and "larger than configured max size" in str(exc):
        return " (the broker's max_message_size, in rabbitmq.conf)"
    return ""


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
    check_publish_flags(context.get("publish_flags"))
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

    async def send(self, envelope: Message, context: dict[str, Any]) -> None:
        body, properties, routing_key = build_message(envelope, context)
        message_id = properties.message_id
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.push_timeout
        delays = Backoff(RETRY_FIRST, RETRY_CAP)
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
                    f'AMQP broker could not route the push to "{envelope.topic}": no queue is '
                    f'bound to exchange "{self.settings.exchange_name}" with routing key '
                    f'"{routing_key}"',
                    transport=self.name,
                    message_id=message_id,
                ) from exc
            except _FATAL as exc:
                await self.disconnect()  # the channel is gone; start afresh on the next push
                raise PushFailed(
                    f"AMQP broker refused the push: {exc}{_size_hint(exc)}",
                    transport=self.name,
                    message_id=message_id,
                ) from exc
            except TimeoutError as exc:
                last_error = last_error or exc
                logger.debug("AMQP publish of %s unconfirmed, publishing it again", message_id)
            except _TRANSIENT as exc:
                last_error = exc
                logger.debug("AMQP publish failed, retrying: %r", exc)
            except RuntimeError as exc:
                if self.is_connected:
                    raise  # not an outage: a bug, raised at once
                last_error = exc
                logger.debug("AMQP publish failed while reconnecting, retrying: %r", exc)
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise PushFailed(
                    f"AMQP broker at {where(self.settings)} did not confirm "
                    f"the push within {self.settings.push_timeout} s: {last_error!r}",
                    transport=self.name,
                    message_id=message_id,
                ) from last_error
            await asyncio.sleep(min(delays.next(), remaining))

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
                        await declare_dead_letters(connection, self.settings)
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

    def forget_connection(self) -> None:
        """Drop the connection of a closed loop (no I/O); the next push opens a new one."""
        self._connection = self._channel = self._exchange = None
        self._lock = asyncio.Lock()
