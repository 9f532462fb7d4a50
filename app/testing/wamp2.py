# ruff: noqa: ASYNC109  (timeout arguments are these helpers' documented API)
"""WAMP v2 peers for tests: autobahn-python's own ``ApplicationSession``, and a raw peer.

Usage::

    client = await V2Client.join(url_of(server), serializer="msgpack")
    await client.subscribe("acme/channel/lobby")
    assert await client.session.call("acme/rpc/sum", 2, 3) == 5
    assert await client.next_event("acme/channel/lobby") == {"msg": "hi"}
    await client.leave()
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import txaio
from autobahn.asyncio.wamp import ApplicationRunner, ApplicationSession
from autobahn.asyncio.websocket import WebSocketClientFactory, WebSocketClientProtocol
from autobahn.wamp.serializer import JsonSerializer, MsgPackSerializer
from autobahn.wamp.types import CloseDetails, ComponentConfig, SessionDetails

SERIALIZERS = {"json": JsonSerializer, "msgpack": MsgPackSerializer}


class JoinFailed(ConnectionError):
    """The router ended the session before WELCOME (``details`` is autobahn's CloseDetails)."""

    def __init__(self, details: CloseDetails) -> None:
        self.details = details
        super().__init__(f"{details.reason}: {details.message}")


class _Session(ApplicationSession):
    client: V2Client

    def onConnect(self) -> None:
        ticket = self.client.ticket
        if ticket is None:
            super().onConnect()
            return
        realm = self.config.realm
        assert realm is not None  # ApplicationRunner always passes its realm
        self.join(realm, authmethods=["ticket"], authid=self.client.authid)

    def onChallenge(self, challenge: Any) -> str:
        """Ticket auth as autobahn does it: the ticket is the AUTHENTICATE signature."""
        assert challenge.method == "ticket" and self.client.ticket is not None
        return self.client.ticket

    # autobahn declares onJoin synchronous and awaits it when it is a coroutine function
    async def onJoin(self, details: SessionDetails) -> None:  # pyright: ignore[reportIncompatibleMethodOverride]
        self.client._joined.set_result(details)

    def onLeave(self, details: CloseDetails) -> None:
        client = self.client
        if not client.left.done():
            client.left.set_result(details)
        if not client._joined.done():
            client._joined.set_exception(JoinFailed(details))
            client._joined.exception()  # retrieved: join() raises it itself
        super().onLeave(details)

    def onDisconnect(self) -> None:
        if not self.client.disconnected.done():
            self.client.disconnected.set_result(None)


class V2Client:
    """One autobahn-python WAMP v2 session and what it has received, by topic."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        # Both are set by join() before it returns the client.
        self.session: ApplicationSession = None  # type: ignore[assignment]
        self.details: SessionDetails = None  # type: ignore[assignment]
        self.ticket: str | None = None
        self.authid: str | None = None
        self.left: asyncio.Future[CloseDetails] = loop.create_future()
        self.disconnected: asyncio.Future[None] = loop.create_future()
        self._joined: asyncio.Future[SessionDetails] = loop.create_future()
        self._events: defaultdict[str, asyncio.Queue[tuple[tuple[Any, ...], dict[str, Any]]]]
        self._events = defaultdict(asyncio.Queue)

    @classmethod
    async def join(
        cls,
        url: str,
        realm: str = "realm1",
        serializer: str = "json",
        timeout: float = 5.0,
        ticket: str | None = None,
        authid: str | None = None,
    ) -> V2Client:
        """Connect with ``ApplicationRunner`` and wait for WELCOME; raises JoinFailed on ABORT.

        With ``ticket``, HELLO offers ticket auth and answers the CHALLENGE with it."""
        client = cls()
        client.ticket, client.authid = ticket, authid

        def make(config: ComponentConfig) -> _Session:
            session = _Session(config)
            session.client = client
            client.session = session
            return session

        runner = ApplicationRunner(  # type: ignore[no-untyped-call]
            url, realm, serializers=[SERIALIZERS[serializer]()]
        )
        pinned = txaio.config.loop  # type: ignore[attr-defined]
        connect = runner.run(make, start_loop=False)
        # run() pins txaio to this test's loop for good; unpinned, txaio uses the running loop.
        txaio.config.loop = pinned  # type: ignore[attr-defined]
        async with asyncio.timeout(timeout):
            await connect  # pyright: ignore[reportGeneralTypeIssues]  # start_loop=False: a future
            client.details = await client._joined
        return client

    @property
    def session_id(self) -> int:
        assert self.details.session is not None
        return int(self.details.session)

    async def subscribe(self, topic: str) -> Any:
        """Subscribe; events are queued for ``next_event``. Returns autobahn's Subscription."""
        queue = self._events[topic]

        def handler(*args: Any, **kwargs: Any) -> None:
            queue.put_nowait((args, kwargs))

        # declared as returning the Subscription; on asyncio it is a future of it
        return await self.session.subscribe(handler, topic)  # pyright: ignore[reportGeneralTypeIssues]

    async def next_event(self, topic: str, timeout: float = 5.0) -> Any:
        """The payload of the next EVENT on ``topic`` (our server sends it as the one argument)."""
        args, kwargs = await self.next_arguments(topic, timeout)
        assert len(args) == 1 and not kwargs, (args, kwargs)
        return args[0]

    async def next_arguments(
        self, topic: str, timeout: float = 5.0
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The positional and keyword arguments of the next EVENT on ``topic``."""
        async with asyncio.timeout(timeout):
            return await self._events[topic].get()

    def pending(self, topic: str) -> int:
        """Events received on ``topic`` and not read yet."""
        return self._events[topic].qsize()

    async def leave(self, timeout: float = 5.0) -> None:
        """GOODBYE, then wait until the transport is gone."""
        if self.session.is_attached():
            self.session.leave()
        async with asyncio.timeout(timeout):
            await self.disconnected


class _RawProtocol(WebSocketClientProtocol):
    owner: RawPeer  # not `peer`: autobahn keeps the remote address there

    def onOpen(self) -> None:
        self.owner.opened.set_result(self.websocket_protocol_in_use)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.owner.messages.put_nowait(payload if isBinary else json.loads(payload))

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if not self.owner.opened.done():
            self.owner.opened.set_exception(ConnectionError(f"closed: {code} {reason}"))
        if not self.owner.closed.done():
            self.owner.closed.set_result(code)


class RawPeer:
    """A WebSocket peer that sends whatever a test wants on a WAMP v2 subprotocol."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[str | None] = loop.create_future()
        self.closed: asyncio.Future[int | None] = loop.create_future()
        self.messages: asyncio.Queue[Any] = asyncio.Queue()
        self.subprotocol: str | None = None
        self._protocol: _RawProtocol | None = None

    @classmethod
    async def connect(
        cls, url: str, subprotocols: Sequence[str] = ("wamp.2.json",), timeout: float = 5.0
    ) -> RawPeer:
        peer = cls()
        loop = asyncio.get_running_loop()
        factory = WebSocketClientFactory(  # type: ignore[no-untyped-call]
            url, protocols=list(subprotocols), loop=loop
        )
        factory.protocol = _RawProtocol
        parts = urlsplit(url)
        async with asyncio.timeout(timeout):
            _, protocol = await loop.create_connection(
                factory, parts.hostname or "127.0.0.1", parts.port or 80
            )
            protocol.owner = peer
            peer._protocol = protocol
            peer.subprotocol = await peer.opened
        return peer

    def send(self, message: Any) -> None:
        """One JSON text message."""
        self.send_raw(json.dumps(message).encode())

    def send_raw(self, payload: bytes, binary: bool = False) -> None:
        assert self._protocol is not None
        self._protocol.sendMessage(payload, isBinary=binary)  # type: ignore[no-untyped-call]

    async def hello(self, realm: str = "realm1") -> list[Any]:
        """HELLO as a subscriber/publisher/caller; returns the router's answer."""
        roles: dict[str, dict[str, Any]] = {"subscriber": {}, "publisher": {}, "caller": {}}
        self.send([1, realm, {"roles": roles}])
        answer: list[Any] = await self.receive()
        return answer

    async def receive(self, timeout: float = 5.0) -> Any:
        async with asyncio.timeout(timeout):
            return await self.messages.get()

    async def wait_closed(self, timeout: float = 5.0) -> int | None:
        async with asyncio.timeout(timeout):
            return await self.closed

    def close(self) -> None:
        if self._protocol is not None and not self.closed.done():
            self._protocol.sendClose(1000)

    def drop(self) -> None:
        """Close the TCP connection with no WebSocket close and no GOODBYE: a peer that
        vanished (the router must clean up after it all the same)."""
        transport = None if self._protocol is None else self._protocol.transport
        if isinstance(transport, asyncio.Transport):
            transport.abort()
