"""WAMP v1: its message codes, its JSON wire format and ``Wamp1Session``.

The session parses and encodes WAMP v1 and nothing else: every verb goes to the ``Broker``.
GOS's answers are kept: a failed call or topic hook gets CALLERROR (for a topic, the call-id
slot holds the topic URI), SUBSCRIBE or PUBLISH to a channel no route matches closes the
connection with 1007, and a refusal by ``secure()`` gets CALLERROR code 401 and then a close.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from gos_web_socket.app.exceptions import PayloadRejected, ProtocolError
from gos_web_socket.app.limits import BoundedPrefixes, decode_json
from gos_web_socket.app.message import dumps
from gos_web_socket.app.server.session import (
    SERVER_AGENT,
    Failure,
    FrameBuilder,
    Result,
    Session,
    WireFormat,
    call_params,
)
from gos_web_socket.app.wamp_codes import (
    CALL,
    CALLERROR,
    CALLRESULT,
    EVENT,
    PREFIX,
    PUBLISH,
    SUBSCRIBE,
    UNSUBSCRIBE,
    WELCOME,
)

if TYPE_CHECKING:
    from gos_web_socket.app.position import Position
    from gos_web_socket.app.server.broker import Broker
    from gos_web_socket.app.server.connection import WampConnection

SUBPROTOCOL = "wamp"
PROTOCOL_VERSION = 1


class Wamp1Format(WireFormat):
    """WAMP v1 messages as JSON text frames."""

    name = SUBPROTOCOL

    def __init__(self, frame: FrameBuilder) -> None:
        self._frame = frame

    def frame(self, message: list[Any]) -> bytes:
        return self._frame(dumps(message).encode(), False)

    def event_frame(
        self,
        topic: str,
        subscription: int,
        publication: int,
        payload: Any,
        position: Position | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> bytes:
        """EVENT ``[8, topicUri, payload]``; keyword arguments from v2 arrive as their dict.

        v1 has no room for a position: a v1 client asks for it (``gos/history``, see RPC)."""
        return self.frame([EVENT, topic, payload])


class Wamp1Session(Session[Any]):
    """The WAMP v1 side of one connection: PREFIX, CALL, SUBSCRIBE, UNSUBSCRIBE, PUBLISH.

    A request is answered with its call id (for topic errors: the topic URI, as in GOS).
    """

    def __init__(self, connection: WampConnection, wire_format: Wamp1Format, broker: Broker):
        self.connection = connection
        # Narrower than Session's WireFormat; set here once and never reassigned.
        self.wire_format: Wamp1Format = wire_format  # pyright: ignore[reportIncompatibleVariableOverride]
        self.broker = broker
        limits = connection.limits
        self.prefixes = BoundedPrefixes(limits.max_prefixes, limits.max_prefix_bytes)
        self._max_bytes = connection.max_message_size
        self._max_depth = limits.json_max_depth

    def send(self, message: list[Any]) -> bool:
        return self.connection.write_frame(self.wire_format.frame(message))

    # -- the session contract -----------------------------------------------------------------

    def opened(self) -> None:
        """WELCOME goes in the 101's write (the PHP client reads once); the client is connected."""
        welcome = [WELCOME, self.connection.session_id, PROTOCOL_VERSION, SERVER_AGENT]
        self.connection.send_now(self.wire_format.frame(welcome))
        self.connection.joined()

    def closing(self, code: int, reason: str) -> None:
        """WAMP v1 has no goodbye: the WebSocket close says it all."""

    def event(self, topic: str, payload: Any) -> bool:
        return self.send([EVENT, topic, payload])

    def result(self, request: Any, result: Result) -> None:
        self.send([CALLRESULT, request, result.value])

    def error(self, request: Any, failure: Failure) -> None:
        message = [CALLERROR, request, failure.uri, failure.desc]
        if failure.details:
            message.append(failure.details)
        self.send(message)

    def receive(self, payload: bytes, is_binary: bool) -> None:
        try:
            self._receive(payload, is_binary)
        except ProtocolError as exc:
            self.connection.fail(str(exc), exc)

    # -- parsing ------------------------------------------------------------------------------

    def _receive(self, payload: bytes, is_binary: bool) -> None:
        if is_binary:
            raise PayloadRejected("binary_on_text_protocol", "binary frame; WAMP v1 uses text")
        message = decode_json(payload, self._max_bytes, self._max_depth)
        if not isinstance(message, list) or not message:
            raise ProtocolError("a WAMP message must be a non-empty JSON array")
        kind = message[0]
        if len(message) > 1 and (
            isinstance(message[1], bool) or not isinstance(message[1], str | int | float)
        ):
            raise ProtocolError("element 1 must be a string or a number")
        if type(kind) is not int:
            raise ProtocolError(f"message type must be an integer, got {kind!r}")
        enqueue = self.connection.enqueue
        if kind == PREFIX:
            curie, uri = _strings(message, 3, "PREFIX")
            self.prefixes.define(curie, uri)
        elif kind == CALL:
            if len(message) < 3 or not isinstance(message[2], str):
                raise ProtocolError("CALL needs [2, callId, procUri, ...]")
            params = call_params(message[3:])
            call = partial(self._call, message[1], self.resolve(message[2]), params)
            self.connection.enqueue_call(call)
        elif kind == SUBSCRIBE:
            (uri,) = _strings(message, 2, "SUBSCRIBE")
            enqueue(partial(self._subscribe, self.resolve(uri)))
        elif kind == UNSUBSCRIBE:
            (uri,) = _strings(message, 2, "UNSUBSCRIBE")
            enqueue(partial(self._unsubscribe, self.resolve(uri)))
        elif kind == PUBLISH:
            self._publish_message(message)
        else:
            raise ProtocolError(f"unknown message type {kind}")

    def _publish_message(self, message: list[Any]) -> None:
        if not 3 <= len(message) <= 5 or not isinstance(message[1], str):
            raise ProtocolError("PUBLISH needs [7, topicUri, event, exclude?, eligible?]")
        exclude: list[str] = []
        eligible: list[str] = []
        if len(message) > 3:
            option = message[3]
            if isinstance(option, list):
                exclude = option
            elif option:
                exclude = [self.connection.session_id]  # excludeMe
        if len(message) > 4:
            if not isinstance(message[4], list):
                raise ProtocolError("PUBLISH eligible must be a list of session ids")
            eligible = message[4]
        job = partial(self._publish, self.resolve(message[1]), message[2], exclude, eligible)
        self.connection.enqueue(job)

    def resolve(self, uri: str) -> str:
        """Expand a CURIE ``prefix:reference`` by plain concatenation (the WAMP v1 spec).

        Ratchet inserts ``#`` between the two; register prefixes ending in ``#`` or ``/``
        (``[1, "calc", "http://example.com/calc#"]``) and both rules agree.
        """
        prefix, sep, reference = uri.partition(":")
        if sep and not reference.startswith("//"):
            base = self.prefixes.get(prefix)
            if base is not None:
                return base + reference
        return uri

    # -- requests (run in order by the connection's worker) ----------------------------------

    async def _call(self, call_id: Any, uri: str, params: Any) -> None:
        outcome = await self.broker.call(self.connection, uri, params)
        if isinstance(outcome, Result):
            self.result(call_id, outcome)
        else:
            self.error(call_id, outcome)

    async def _subscribe(self, uri: str) -> None:
        outcome = await self.broker.subscribe(self.connection, uri)
        if isinstance(outcome, Failure):
            self._topic_failed(outcome)

    async def _unsubscribe(self, uri: str) -> None:
        failure = await self.broker.unsubscribe(self.connection, uri)
        if failure is not None:
            self._topic_failed(failure)

    async def _publish(self, uri: str, event: Any, exclude: list[str], eligible: list[str]) -> None:
        failure = await self.broker.publish(self.connection, uri, event, exclude, eligible)
        if failure is not None:
            self._topic_failed(failure)

    def _topic_failed(self, failure: Failure) -> None:
        if failure.no_route:
            self.connection.fail(failure.desc, failure.error)
            return
        self.error(failure.uri, failure)
        if failure.disconnect:
            self.connection.refuse()


def _strings(message: list[Any], length: int, name: str) -> list[str]:
    fields = message[1:length]
    if len(message) != length or not all(isinstance(f, str) for f in fields):
        raise ProtocolError(f"{name} needs {length - 1} string field(s)")
    return fields
