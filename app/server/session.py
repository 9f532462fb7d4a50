"""The contract between a WebSocket connection and the WAMP version it speaks.

A ``WampConnection`` moves bytes and holds one ``Session``: ``Wamp1Session`` (app/server/wamp1.py)
or ``Wamp2Session`` (app/server/wamp2/). A session parses and encodes its own wire format and
nothing else; it asks the ``Broker`` (app/server/broker.py) to subscribe, unsubscribe, publish
and call, and encodes what comes back (a ``Result`` or a ``Failure``) its own way.

Topics frame an EVENT once per ``WireFormat`` among their subscribers; WAMP v1 is one format next
to v2 JSON and v2 MessagePack. This module imports nothing else from ``app.server``.
"""

from __future__ import annotations

import random
import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

if TYPE_CHECKING:
    from gos_web_socket.app.position import Position

MAX_ID = 2**53
"""Session, publication and request ids are integers in [1, 2^53]: JavaScript reads them exactly."""

SERVER_AGENT = "GosWebSocket-Python/0.1"
"""The HTTP ``Server`` header, v1 WELCOME's server ident and v2 WELCOME's agent.

It must not contain ``[`` or ``]``: the PHP client cuts WELCOME at the first bracket."""

FrameBuilder = Callable[[bytes, bool], bytes]
"""(payload, is_binary) to the wire bytes of one unmasked server frame (``WampServer.frame``)."""

_publication_ids = random.Random(secrets.randbits(64))


def new_session_id() -> int:
    """A random session id in [1, 2^53] (WAMP v2's global scope; v1 uses its decimal string)."""
    return secrets.randbelow(MAX_ID) + 1


def new_publication_id() -> int:
    """A random publication id in [1, 2^53]; not a secret, so the fast generator."""
    return _publication_ids.randint(1, MAX_ID)


def call_params(args: list[Any]) -> Any:
    """A call's params from its positional arguments, the same rule in v1 and v2: a single
    list or dict argument is the params, anything else the list of arguments."""
    return args[0] if len(args) == 1 and isinstance(args[0], list | dict) else args


class KeywordArguments(dict[str, Any]):
    """WAMP v2 keyword arguments (``ArgumentsKw``) carried as one event, params or result.

    A v2 PUBLISH or CALL that has keyword arguments only hands them to the hooks as this dict.
    Broadcast, it reaches v2 subscribers as EVENT ``ArgumentsKw`` and v1 subscribers as the dict;
    returned by an RPC method, it answers v2 with RESULT ``ArgumentsKw`` and v1 with the dict.
    """

    __slots__ = ()


class WireFormat(ABC):
    """How one kind of client receives an EVENT; ``Topic.broadcast`` frames once per format."""

    name: ClassVar[str]

    @abstractmethod
    def event_frame(
        self,
        topic: str,
        subscription: int,
        publication: int,
        payload: Any,
        position: Position | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> bytes:
        """The complete frame of one EVENT of ``payload`` on ``topic``; ``position`` is where
        it is in its channel's history (app/history.py), ``details`` the v2 EVENT details
        the router adds (``topic`` of a pattern subscription, ``publisher``), for formats
        that can carry them."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def event_frame(
    wire: WireFormat,
    topic: str,
    subscription: int,
    publication: int,
    payload: Any,
    position: Position | None = None,
    details: Mapping[str, Any] | None = None,
) -> bytes:
    """``wire.event_frame``, passing ``details`` only when there are some: a format written
    before they existed (one argument fewer) keeps working."""
    if details:
        return wire.event_frame(topic, subscription, publication, payload, position, details)
    return wire.event_frame(topic, subscription, publication, payload, position)


@dataclass(frozen=True, slots=True)
class Result:
    """A call's answer: the RPC method's return value, a list or a dict."""

    value: list[Any] | dict[str, Any]


@dataclass(frozen=True, slots=True)
class Failure:
    """A verb that did not succeed; each session encodes it (v1 CALLERROR, v2 ERROR).

    ``details`` is GOS's ``{code, ...}`` dict; ``no_route`` says that no route matched the URI;
    ``disconnect`` that the client is closed once it was told (a refusal by ``secure()``).
    """

    uri: str
    desc: str
    details: dict[str, Any]
    no_route: bool = False
    disconnect: bool = False
    error: Exception | None = None
    """The exception behind the failure, for ``client_error`` when a session closes on it."""

    @property
    def code(self) -> Any:
        return self.details.get("code")


RequestT = TypeVar("RequestT")
"""What a session needs to answer one request (v1: the call id, v2: the request's type and id)."""


class Session(ABC, Generic[RequestT]):
    """One client's WAMP conversation over its connection.

    The connection calls ``opened``, ``receive`` and ``closing``; topics and user code call
    ``event``; the session itself calls ``result`` and ``error`` with what the broker answered.
    """

    wire_format: WireFormat
    """How topics frame this session's EVENTs."""

    authenticates_in_session: ClassVar[bool] = False
    """True when the protocol authenticates itself (v2 HELLO); else the handshake does (v1)."""

    @abstractmethod
    def opened(self) -> None:
        """The WebSocket handshake is done (v1 sends WELCOME, v2 waits for HELLO)."""

    @abstractmethod
    def receive(self, payload: bytes, is_binary: bool) -> None:
        """One WebSocket message; a protocol violation closes this connection only."""

    @abstractmethod
    def closing(self, code: int, reason: str) -> None:
        """The server is about to close the WebSocket with ``code``: say it in WAMP first."""

    @abstractmethod
    def event(self, topic: str, payload: Any) -> bool:
        """Send one EVENT to this client alone; False when it was not sent."""

    @abstractmethod
    def result(self, request: RequestT, result: Result) -> None:
        """Encode and send the answer to a call."""

    @abstractmethod
    def error(self, request: RequestT, failure: Failure) -> None:
        """Encode and send the error answer to a request."""


class Ended(Session[Any]):
    """The session a connection keeps once its departure is done: it sends and answers
    nothing. The real one pointed back at the connection (a reference cycle that only a full
    garbage collection frees, ``app/gc_pacer.py``); whoever still holds the real one (a late
    RPC answer) keeps it, and its writes find the connection gone."""

    def __init__(self, wire_format: WireFormat) -> None:
        self.wire_format = wire_format

    def opened(self) -> None:
        """Never: the connection is gone."""

    def receive(self, payload: bytes, is_binary: bool) -> None:
        """Never: the connection is gone."""

    def closing(self, code: int, reason: str) -> None:
        """Nothing to say: the connection is gone."""

    def event(self, topic: str, payload: Any) -> bool:
        return False

    def result(self, request: Any, result: Result) -> None:
        """Nobody to answer."""

    def error(self, request: Any, failure: Failure) -> None:
        """Nobody to answer."""
