# ruff: noqa: ASYNC109  (timeout arguments are this client's documented API)
"""Our own asyncio WAMP v1 test client over a real socket (autobahn's client protocol).

Usage::

    client = await WampTestClient.connect(f"ws://127.0.0.1:{port}/")
    client.prefix("rpc", "acme/rpc/")
    assert await client.call("rpc:sum", 2, 3) == [5]
    client.subscribe("acme/channel/1")
    client.publish("acme/channel/1", {"hello": "world"})
    assert await client.next_event("acme/channel/1") == {"hello": "world"}
    await client.close()
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from autobahn.asyncio.websocket import WebSocketClientFactory, WebSocketClientProtocol

from gos_web_socket.app import wamp_codes as v1  # the protocol's codes live in one place


class CallError(Exception):
    """A CALLERROR answer: ``uri``, ``desc`` and ``details`` (None when absent)."""

    def __init__(self, uri: str, desc: str, details: Any = None) -> None:
        self.uri = uri
        self.desc = desc
        self.details = details
        super().__init__(f"{uri}: {desc}")

    @classmethod
    def of(cls, message: list[Any]) -> CallError:
        """The error a CALLERROR message ``[4, id, uri, desc, details?]`` carries."""
        return cls(message[2], message[3], message[4] if len(message) > 4 else None)


class ConnectFailed(ConnectionError):
    """The opening handshake did not end in a WELCOME."""


class PendingCalls:
    """The CALLs a client awaits, by call id. Kept apart from ``WampTestClient`` so that how
    a CALLRESULT or CALLERROR finds its CALL, and a close fails them all, is in one place."""

    def __init__(self) -> None:
        self._futures: dict[str, asyncio.Future[Any]] = {}

    def start(self) -> tuple[str, asyncio.Future[Any]]:
        """A fresh call id, and the future its answer settles."""
        call_id = secrets.token_hex(6)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._futures[call_id] = future
        return call_id, future

    def forget(self, call_id: str) -> None:
        self._futures.pop(call_id, None)

    def answered(self, message: list[Any]) -> bool:
        """Settle the CALL that a CALLRESULT or CALLERROR answers; False: no CALL waits for
        it (topic errors put the topic URI in the call-id slot)."""
        future = self._futures.pop(message[1], None)
        if future is None:
            return False
        if not future.done():
            if message[0] == v1.CALLRESULT:
                future.set_result(message[2])
            else:
                future.set_exception(CallError.of(message))
        return True

    def closed(self, code: int | None) -> None:
        """The connection ended: every CALL still waiting fails."""
        for future in self._futures.values():
            if not future.done():
                future.set_exception(ConnectionError(f"connection closed ({code})"))


class _Protocol(WebSocketClientProtocol):
    """autobahn's end of a ``WampTestClient``: opens the socket, hands frames and the close
    on. Kept apart so the client holds only what a test reads and sends."""

    client: WampTestClient | None = None
    """Set once the opening handshake is done: a connect aborted before has none to tell."""

    @classmethod
    async def open(
        cls,
        url: str,
        subprotocols: Sequence[str],
        origin: str | None,
        timeout: float,
        ssl: Any,
        headers: dict[str, str] | None,
        local_host: str | None,
    ) -> _Protocol:
        """A connection to ``url`` (``ws`` or ``wss``), its opening handshake under way."""
        parts = urlsplit(url)
        secure = parts.scheme == "wss"
        loop = asyncio.get_running_loop()
        factory = WebSocketClientFactory(  # type: ignore[no-untyped-call]
            url, origin=origin, protocols=list(subprotocols) or None, loop=loop, headers=headers
        )
        factory.protocol = cls
        host = parts.hostname or "127.0.0.1"
        port = parts.port or (443 if secure else 80)
        _, protocol = await asyncio.wait_for(
            loop.create_connection(
                factory,
                host,
                port,
                ssl=ssl if secure else None,
                local_addr=(local_host, 0) if local_host else None,
            ),
            timeout,
        )
        assert isinstance(protocol, cls)
        return protocol

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if self.client is not None:
            self.client._on_message(json.loads(payload))

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if self.client is not None:
            self.client._on_close(code, reason)


class WampTestClient:
    """A WAMP v1 peer for tests: every frame type, plus raw sends for the error paths."""

    def __init__(self) -> None:
        self.session_id = ""
        self.welcome: list[Any] = []
        self.subprotocol: str | None = None
        self.events: list[tuple[str, Any]] = []
        self.messages: list[list[Any]] = []
        """Every message received, WELCOME included, in order."""
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self._unread: list[tuple[str, Any]] = []
        self._topic_errors: list[list[Any]] = []
        self._calls = PendingCalls()
        self._arrived = asyncio.Event()
        self._welcomed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._closed: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._protocol: _Protocol | None = None

    @classmethod
    async def connect(
        cls,
        url: str,
        subprotocols: Sequence[str] = ("wamp",),
        origin: str | None = None,
        timeout: float = 5.0,
        ssl: Any = None,
        headers: dict[str, str] | None = None,
        local_host: str | None = None,
    ) -> WampTestClient:
        """Open the connection and wait for WELCOME; raises ConnectFailed otherwise.

        ``local_host`` binds the client's end to that address (e.g. ``127.0.0.5``), so that a
        test can connect from an address of its choosing on loopback."""
        client = cls()
        protocol = await _Protocol.open(
            url, subprotocols, origin, timeout, ssl, headers, local_host
        )
        protocol.client = client
        client._protocol = protocol
        try:
            await asyncio.wait_for(asyncio.shield(client._welcomed), timeout)
        except TimeoutError:
            protocol.dropConnection(abort=True)
            raise ConnectFailed(f"no WELCOME from {url} within {timeout} s") from None
        client.subprotocol = protocol.websocket_protocol_in_use
        return client

    # -- incoming ---------------------------------------------------------------------------

    def _on_message(self, message: list[Any]) -> None:
        self.messages.append(message)
        kind = message[0]
        if kind == v1.WELCOME:
            self.welcome = message
            self.session_id = message[1]
            if not self._welcomed.done():
                self._welcomed.set_result(None)
        elif kind == v1.EVENT:
            self.events.append((message[1], message[2]))
            self._unread.append((message[1], message[2]))
        elif kind in (v1.CALLRESULT, v1.CALLERROR) and not self._calls.answered(message):
            self._topic_errors.append(message)
        self._arrived.set()

    def _on_close(self, code: int | None, reason: str | None) -> None:
        self.close_code, self.close_reason = code, reason
        if not self._welcomed.done():
            self._welcomed.set_exception(ConnectFailed(f"closed before WELCOME: {code} {reason}"))
            self._welcomed.exception()  # mark retrieved
        if not self._closed.done():
            self._closed.set_result(code)
        self._calls.closed(code)
        self._arrived.set()

    async def _wait_for(self, find: Any, timeout: float, what: str) -> Any:
        async def loop() -> Any:
            while True:
                found = find()
                if found is not None:
                    return found
                if self._closed.done():
                    raise ConnectionError(f"closed ({self.close_code}) while waiting for {what}")
                self._arrived.clear()
                await self._arrived.wait()

        try:
            return await asyncio.wait_for(loop(), timeout)
        except TimeoutError:
            raise TimeoutError(f"no {what} within {timeout} s") from None

    async def next_event(self, uri: str | None = None, timeout: float = 5.0) -> Any:
        """The payload of the oldest EVENT not returned yet (for ``uri`` if given)."""

        def find() -> tuple[Any] | None:
            for index, (topic, payload) in enumerate(self._unread):
                if uri is None or topic == uri:
                    del self._unread[index]
                    return (payload,)
            return None

        return (await self._wait_for(find, timeout, f"EVENT for {uri or 'any topic'}"))[0]

    async def next_topic_error(self, topic_uri: str, timeout: float = 5.0) -> CallError:
        """A CALLERROR whose call-id slot holds ``topic_uri`` (what a topic sends)."""

        def find() -> CallError | None:
            for index, message in enumerate(self._topic_errors):
                if message[1] == topic_uri:
                    del self._topic_errors[index]
                    return CallError.of(message)
            return None

        return await self._wait_for(find, timeout, f"CALLERROR for {topic_uri}")  # type: ignore[no-any-return]

    def unread_events(self) -> list[tuple[str, Any]]:
        return list(self._unread)

    async def wait_closed(self, timeout: float = 5.0) -> int | None:
        """Wait until the connection is closed; returns the close code (None if none)."""
        return await asyncio.wait_for(asyncio.shield(self._closed), timeout)

    @property
    def is_open(self) -> bool:
        return self._protocol is not None and not self._closed.done()

    # -- outgoing ---------------------------------------------------------------------------

    def send(self, message: list[Any]) -> None:
        self.send_raw(json.dumps(message))

    def send_raw(self, text: str | bytes, binary: bool = False) -> None:
        assert self._protocol is not None
        data = text.encode() if isinstance(text, str) else text
        self._protocol.sendMessage(data, isBinary=binary)  # type: ignore[no-untyped-call]

    def prefix(self, prefix: str, uri: str) -> None:
        self.send([v1.PREFIX, prefix, uri])

    async def call(self, uri: str, *args: Any, timeout: float = 5.0) -> Any:
        """CALL and wait: the CALLRESULT's result, or CallError on CALLERROR."""
        call_id, future = self._calls.start()
        self.send([v1.CALL, call_id, uri, *args])
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            self._calls.forget(call_id)

    def subscribe(self, uri: str) -> None:
        self.send([v1.SUBSCRIBE, uri])

    def unsubscribe(self, uri: str) -> None:
        self.send([v1.UNSUBSCRIBE, uri])

    def publish(
        self,
        uri: str,
        event: Any,
        exclude_me: bool | None = None,
        exclude: list[str] | None = None,
        eligible: list[str] | None = None,
    ) -> None:
        """PUBLISH in the shortest form that carries the options given (as AutobahnJS)."""
        message: list[Any] = [v1.PUBLISH, uri, event]
        if eligible is not None:
            message += [exclude or [], eligible]
        elif exclude is not None:
            message.append(exclude)
        elif exclude_me is not None:
            message.append(exclude_me)
        self.send(message)

    async def close(self, code: int = 1000, timeout: float = 5.0) -> None:
        """Close cleanly and wait for the connection to end."""
        if self._protocol is not None and not self._closed.done():
            self._protocol.sendClose(code)
            try:
                await self.wait_closed(timeout)
            except TimeoutError:
                self._protocol.dropConnection(abort=True)

    def abort(self) -> None:
        """Drop the TCP connection without a closing handshake."""
        if self._protocol is not None:
            self._protocol.dropConnection(abort=True)
