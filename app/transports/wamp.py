"""WAMP pusher: a WebSocket client of the server that sends WAMP v1 PUBLISH (GOS's WampPusher).

As in GOS the frame is ``[7, channel, json_encode(data), [], []]``: the event is the data
JSON-encoded *as a string*, and it reaches the topic's ``on_publish``, not ``on_push``.

Unlike GOS, which made a WebSocket handshake for every web request, one connection is kept
and reused; when it drops it is reopened in the background with exponential backoff (capped
by ``max_backoff``). A push waits at most ``timeout`` for a connection, then raises
``PushFailed``. Delivery is at-most-once: WAMP v1 does not acknowledge a PUBLISH.

A PUBLISH over the server's ``server.max_message_size`` or ``max_frame_size`` would close the
connection with 1009 and lose it, and those already on the wire; it is refused with
``PushFailed`` instead (``max_message_size``: the smaller of the two, from the same settings).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from autobahn.asyncio.websocket import WebSocketClientFactory, WebSocketClientProtocol
from autobahn.exception import Disconnected

from gos_web_socket.app.backoff import Backoff
from gos_web_socket.app.exceptions import InvalidPushArgument, ProtocolError, PushFailed
from gos_web_socket.app.message import Message, dumps
from gos_web_socket.app.transports.pusher import Pusher
from gos_web_socket.app.wamp_codes import PUBLISH, WELCOME

if TYPE_CHECKING:
    from gos_web_socket.app.events import EventDispatcher
    from gos_web_socket.app.router import Router
    from gos_web_socket.settings.models import WampSettings

__all__ = ["WampPusher", "publish_frame"]

logger = logging.getLogger(__name__)

FIRST_BACKOFF = 0.05
DEFAULT_MAX_MESSAGE_SIZE = 65536
"""``server.max_message_size`` and ``max_frame_size``'s default."""


def publish_frame(message: Message) -> bytes:
    """The WAMP v1 PUBLISH GOS sends: empty exclude and eligible lists, data as a JSON string."""
    try:
        return dumps([PUBLISH, message.topic, dumps(message.data), [], []]).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidPushArgument(f"push data cannot be encoded as JSON: {exc}") from exc


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a failure as seen: nobody may be waiting for it any more."""
    if not future.cancelled():
        future.exception()


class _PublisherProtocol(WebSocketClientProtocol):
    """One connection of the pusher: waits for WELCOME, then only sends."""

    def __init__(self) -> None:
        super().__init__()
        loop = asyncio.get_running_loop()
        self.welcomed: asyncio.Future[str] = loop.create_future()
        self.welcomed.add_done_callback(_retrieve)
        self.lost: asyncio.Future[None] = loop.create_future()

    @property
    def can_send(self) -> bool:
        return self.state == self.STATE_OPEN and self.welcomed.done()

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if self.welcomed.done():
            return  # a pusher subscribes to nothing and calls nothing
        try:
            frame = json.loads(payload)
        except ValueError:
            frame = None
        if isinstance(frame, list) and len(frame) > 1 and frame[0] == WELCOME:
            self.welcomed.set_result(str(frame[1]))
        else:
            self.welcomed.set_exception(
                ProtocolError(f"expected a WAMP v1 WELCOME, got {payload[:80]!r}")
            )
            self.dropConnection(abort=True)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        self._settle(f"closed ({code}: {reason})" if code or reason else "closed")

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)  # type: ignore[no-untyped-call]
        self._settle(f"connection lost: {exc}" if exc else "connection lost")

    def _settle(self, why: str) -> None:
        if not self.welcomed.done():
            self.welcomed.set_exception(ConnectionError(f"{why} before WELCOME"))
        if not self.lost.done():
            self.lost.set_result(None)


class WampPusher(Pusher):
    """Publishes pushes into the server over one reused WAMP v1 connection.

    ``context`` is accepted and ignored, as in GOS. ``max_message_size``: the server's limit
    on one client message (``server.max_message_size``, ``max_frame_size``: the smaller).
    """

    name = "wamp"
    reads_context = False

    def __init__(
        self,
        settings: WampSettings,
        router: Router,
        dispatcher: EventDispatcher | Callable[[], EventDispatcher] | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        super().__init__(router, settings=settings, dispatcher=dispatcher)
        self.settings = settings
        self.max_message_size = max_message_size
        scheme = "wss" if settings.ssl else "ws"
        self.url = f"{scheme}://{settings.host}:{settings.port}/"
        origin = settings.origin or settings.host
        if "://" not in origin:  # GOS sends a bare host; a URL passes every server's check
            origin = f"{'https' if settings.ssl else 'http'}://{origin}"
        self.origin = origin
        self._factory: WebSocketClientFactory | None = None
        self._protocol: _PublisherProtocol | None = None
        self._connecting: asyncio.Task[_PublisherProtocol] | None = None
        self._last_error: BaseException | None = None
        self._closing = False

    async def send(self, envelope: Message, context: dict[str, Any]) -> None:
        frame = publish_frame(envelope)
        if len(frame) > self.max_message_size:
            raise PushFailed(
                f'push to "{envelope.topic}" is a {len(frame)}-byte PUBLISH, over the server\'s '
                f"server.max_message_size / max_frame_size ({self.max_message_size} bytes): "
                "it would close the connection with 1009",
                transport=self.name,
            )
        protocol = self._protocol
        if protocol is None or not protocol.can_send:
            protocol = await self._wait_connected()
        try:
            protocol.sendMessage(frame)  # type: ignore[no-untyped-call]
        except Disconnected as exc:
            raise PushFailed(f"WAMP connection to {self.url} closed", transport=self.name) from exc

    async def _wait_connected(self) -> _PublisherProtocol:
        """Join (or start) the reconnect task for at most ``timeout`` seconds."""
        task = self._connecting
        if task is None or task.done():
            task = self._connecting = asyncio.create_task(self._reconnect(), name="wamp-pusher")
        await asyncio.wait({task}, timeout=self.settings.timeout)
        if task.done() and not task.cancelled():
            return task.result()
        reason = "the pusher closed" if task.done() else f"no answer in {self.settings.timeout} s"
        raise PushFailed(
            f"WAMP server {self.url} not reachable: {reason}"
            + (f" (last error: {self._last_error})" if self._last_error else ""),
            transport=self.name,
        ) from self._last_error

    async def _reconnect(self) -> _PublisherProtocol:
        """Connect, retrying with exponential backoff until it works or the pusher closes."""
        delays = Backoff(FIRST_BACKOFF, self.settings.max_backoff)
        while True:
            try:
                protocol = await asyncio.wait_for(self._open(), self.settings.timeout)
            except Exception as exc:
                if self._last_error is None:
                    logger.warning("WAMP pusher cannot reach %s: %s; retrying", self.url, exc)
                self._last_error = exc
                await asyncio.sleep(delays.next())
                continue
            if self._last_error is not None:
                logger.info("WAMP pusher connected to %s", self.url)
            self._last_error = None
            self._protocol = protocol
            protocol.lost.add_done_callback(functools.partial(self._on_lost, protocol))
            return protocol

    async def _open(self) -> _PublisherProtocol:
        loop = asyncio.get_running_loop()
        if self._factory is None:
            # Built on the running loop: a factory bound to another loop never completes.
            token = self.settings.token
            headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token else None
            factory = WebSocketClientFactory(  # type: ignore[no-untyped-call]
                self.url, origin=self.origin, protocols=["wamp"], loop=loop, headers=headers
            )
            factory.protocol = _PublisherProtocol
            factory.setProtocolOptions(  # type: ignore[no-untyped-call]
                openHandshakeTimeout=self.settings.timeout
            )
            self._factory = factory
        context = ssl.create_default_context() if self.settings.ssl else None
        transport, protocol = await loop.create_connection(
            self._factory, self.settings.host, self.settings.port, ssl=context
        )
        assert isinstance(protocol, _PublisherProtocol)
        try:
            await protocol.welcomed
        except BaseException:
            transport.abort()
            raise
        return protocol

    def _on_lost(self, protocol: _PublisherProtocol, _lost: asyncio.Future[None]) -> None:
        if protocol is not self._protocol or self._closing:
            return
        self._protocol = None
        logger.info("WAMP pusher lost its connection to %s; reconnecting", self.url)
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.create_task(self._reconnect(), name="wamp-pusher")

    async def disconnect(self) -> None:
        """Stop reconnecting and close the connection (1000); a later push connects again."""
        self._closing = True
        try:
            task, self._connecting = self._connecting, None
            if task is not None and not task.done():
                task.cancel()
                await asyncio.wait({task})
            protocol, self._protocol = self._protocol, None
            if protocol is not None and protocol.can_send:
                protocol.sendClose(1000)
                await asyncio.wait({protocol.lost}, timeout=self.settings.timeout)
                if not protocol.lost.done():
                    protocol.dropConnection(abort=True)
        finally:
            self._closing = False
            self._last_error = None

    def forget_connection(self) -> None:
        """Drop the factory and protocol of a closed loop; the next push connects anew."""
        self._factory = None
        self._protocol = None
        self._connecting = None
