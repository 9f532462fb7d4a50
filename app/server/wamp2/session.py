"""``Wamp2Session``: the session contract for WAMP v2, and each message type to its role.

The roles (handshake.py, pubsub.py, rpc.py, callee.py) parse their messages and ask the
``Broker``; they answer through one ``Answers`` (answers.py). The session decodes and dispatches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gos_web_socket.app.exceptions import ProtocolError
from gos_web_socket.app.server.session import Failure, Result, Session, new_publication_id
from gos_web_socket.app.server.wamp2 import codes
from gos_web_socket.app.server.wamp2.answers import Answers, result_message
from gos_web_socket.app.server.wamp2.callee import Callee, not_an_invocation_error
from gos_web_socket.app.server.wamp2.handshake import Handshake
from gos_web_socket.app.server.wamp2.parsing import Request, decode
from gos_web_socket.app.server.wamp2.pubsub import PubSub
from gos_web_socket.app.server.wamp2.rpc import Rpc
from gos_web_socket.app.server.wamp2.serializers import Serializer

if TYPE_CHECKING:
    from gos_web_socket.app.server.broker import Broker
    from gos_web_socket.app.server.connection import WampConnection


class Wamp2Session(Session[Request]):
    """The WAMP v2 side of one connection: its roles, the dispatch and the contract's replies."""

    authenticates_in_session = True  # at HELLO: handshake credentials or a ticket

    def __init__(
        self, connection: WampConnection, serializer: Serializer, broker: Broker, realm: str
    ) -> None:
        self.connection = connection
        # Narrower than Session's WireFormat; set here once and never reassigned.
        self.wire_format: Serializer = serializer  # pyright: ignore[reportIncompatibleVariableOverride]
        self.broker = broker
        self.answers = Answers(connection, serializer)
        self.handshake = Handshake(self.answers, broker, realm)
        self.pubsub = PubSub(self.answers, broker)
        self.rpc = Rpc(self.answers, broker, self.handshake)
        self.callee = Callee(self.answers, broker, self.handshake)

    @property
    def session_id(self) -> int:
        return int(self.connection.session_id)

    @property
    def welcomed(self) -> bool:
        """True from the WELCOME on; the session then counts as connected (events fired)."""
        return self.handshake.welcomed

    @property
    def ended(self) -> bool:
        """True once ABORT or GOODBYE was sent or received: later messages are ignored."""
        return self.handshake.ended

    def send(self, message: list[Any]) -> bool:
        return self.answers.send(message)

    # -- the session contract -----------------------------------------------------------------

    def opened(self) -> None:
        """Nothing to send: the client speaks first (HELLO)."""

    def receive(self, payload: bytes, is_binary: bool) -> None:
        """Handle one WebSocket message; a protocol violation aborts this session only."""
        if self.handshake.ended:
            return
        try:
            self.handle(decode(self.wire_format, payload, is_binary))
        except ProtocolError as exc:
            self.connection.fail(str(exc), exc)

    def closing(self, code: int, reason: str) -> None:
        """The server closes the connection: say so in WAMP first (ABORT or GOODBYE)."""
        self.handshake.closing(code, reason)

    def event(self, topic: str, payload: Any) -> bool:
        """EVENT to this client alone, on its subscription to ``topic``; False without one."""
        entry = self.connection.subscriptions.get(topic)
        if entry is None:
            return False
        subscription = entry[0].subscription_id
        frame = self.wire_format.event_frame(topic, subscription, new_publication_id(), payload)
        return self.connection.write_frame(frame)

    def result(self, request: Request, result: Result) -> None:
        """RESULT (see ``answers.result_message``), unless the request was answered."""
        self.answers.acknowledge(request, result_message(request.id, result.value))

    def error(self, request: Request, failure: Failure) -> None:
        """ERROR with the URI for the failure's GOS code; its details are the ERROR's kwargs."""
        self.answers.failure(request, failure)

    # -- dispatch -----------------------------------------------------------------------------

    def handle(self, message: list[Any]) -> None:
        """One decoded message to the role that speaks it, by type and session state."""
        kind = message[0]
        if kind == codes.ABORT:
            self.handshake.aborted(message)
        elif not self.handshake.welcomed:
            self.handshake.opening(message)
        else:
            match kind:
                case codes.SUBSCRIBE:
                    self.pubsub.subscribe_message(message)
                case codes.UNSUBSCRIBE:
                    self.pubsub.unsubscribe_message(message)
                case codes.PUBLISH:
                    self.pubsub.publish_message(message)
                case codes.CALL:
                    self.rpc.call_message(message)
                case codes.GOODBYE:
                    self.handshake.goodbye(message)
                case codes.YIELD:
                    self.callee.yield_message(message)
                case codes.ERROR if len(message) > 1 and message[1] == codes.INVOCATION:
                    self.callee.error_message(message)
                case codes.ERROR:
                    raise not_an_invocation_error(message)
                case codes.CANCEL:
                    self.rpc.cancel_message(message)
                case codes.REGISTER:
                    self.callee.register_message(message)
                case codes.UNREGISTER:
                    self.callee.unregister_message(message)
                case codes.HELLO:
                    raise ProtocolError("HELLO received after the session was established")
                case _:
                    raise ProtocolError(f"unexpected message type {kind}")
