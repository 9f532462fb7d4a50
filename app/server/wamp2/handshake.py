"""Opening and ending a v2 session: HELLO, CHALLENGE/AUTHENTICATE, WELCOME, ABORT, GOODBYE."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from gos_web_socket.app.close_codes import CLOSE_NORMAL
from gos_web_socket.app.exceptions import ProtocolError
from gos_web_socket.app.server.session import SERVER_AGENT
from gos_web_socket.app.server.wamp2.audience import identity
from gos_web_socket.app.server.wamp2.codes import (
    ABORT,
    AUTHENTICATE,
    CHALLENGE,
    GOODBYE,
    GOODBYE_AND_OUT,
    HELLO,
    NO_SUCH_REALM,
    NOT_AUTHORIZED,
    ROUTER_ROLES,
    WELCOME,
    close_message,
)
from gos_web_socket.app.server.wamp2.parsing import a_dict, a_str, length

if TYPE_CHECKING:
    from gos_web_socket.app.auth.user import User
    from gos_web_socket.app.server.broker import Broker
    from gos_web_socket.app.server.wamp2.answers import Answers

logger = logging.getLogger(__name__)


class Handshake:
    """The session's opening (who the client is, in which realm) and its end, both ways."""

    __slots__ = (
        "answers",
        "authid",
        "authrole",
        "broker",
        "challenged",
        "ended",
        "realm",
        "roles",
        "welcomed",
    )

    def __init__(self, answers: Answers, broker: Broker, realm: str) -> None:
        self.answers = answers
        self.broker = broker
        self.realm = realm
        self.ended = False
        """True once ABORT or GOODBYE was sent or received: later messages are ignored."""
        self.welcomed = False
        """True from the WELCOME on; the session then counts as connected (events fired)."""
        self.challenged = False
        """True from CHALLENGE (ticket) until AUTHENTICATE."""
        self.roles: dict[str, Any] = {}
        """HELLO's ``details.roles``: the client's roles and the features each announces."""
        self.authid = self.authrole = ""
        """As WELCOME told the client; what caller identification discloses."""

    def feature(self, role: str, name: str) -> bool:
        """The client announced feature ``name`` for ``role`` in HELLO."""
        node = self.roles.get(role)
        features = node.get("features") if isinstance(node, dict) else None
        return isinstance(features, dict) and features.get(name) is True

    def opening(self, message: list[Any]) -> None:
        """A message before WELCOME: HELLO, or AUTHENTICATE after CHALLENGE."""
        kind = message[0]
        if kind == AUTHENTICATE and self.challenged:
            self.authenticate(message)
            return
        if kind != HELLO or self.challenged:
            raise ProtocolError(f"message type {kind} before HELLO")
        self.hello(message)

    def hello(self, message: list[Any]) -> None:
        length(message, 3, 3, "HELLO")
        realm = a_str(message[1], "HELLO realm")
        details = a_dict(message[2], "HELLO details")
        roles = details.get("roles")
        if not isinstance(roles, dict) or not roles:
            raise ProtocolError("HELLO must announce at least one role in details.roles")
        self.roles = roles
        connection = self.answers.connection
        if realm != self.realm:
            logger.info("connection %s asked for unknown realm %r", connection.session_id, realm)
            self.ended = True
            self.answers.send([ABORT, {"message": f"no realm {realm!r} here"}, NO_SUCH_REALM])
            connection.close(CLOSE_NORMAL, "no such realm")
            return
        authenticator = self.broker.authenticator
        methods = details.get("authmethods")
        if isinstance(methods, list) and "ticket" in methods and authenticator.takes_tickets:
            self.challenged = True
            self.answers.send([CHALLENGE, "ticket", {}])
            return
        self.admit(authenticator.admit(connection), "anonymous")

    def authenticate(self, message: list[Any]) -> None:
        """AUTHENTICATE ``[5, ticket, extra]`` after CHALLENGE ticket."""
        length(message, 2, 3, "AUTHENTICATE")
        ticket = a_str(message[1], "AUTHENTICATE signature")
        self.challenged = False
        self.admit(self.broker.authenticator.admit(self.answers.connection, ticket), "ticket")

    def admit(self, user: User | None, method: str) -> None:
        """WELCOME the user the authenticator admitted, or ABORT not_authorized."""
        connection = self.answers.connection
        if user is None:
            self.ended = True
            self.answers.send([ABORT, {"message": "not authorized"}, NOT_AUTHORIZED])
            connection.close(CLOSE_NORMAL, "not authorized")
            return
        self.welcomed = True
        authid, authrole = identity(user, connection.session_id)
        if user.is_anonymous:
            method = "anonymous"
        elif method != "ticket":
            method = user.provider
        self.authid, self.authrole = authid, authrole
        welcome_details = {
            "realm": self.realm,
            "authid": authid,
            "authrole": authrole,
            "authmethod": method,
            "agent": SERVER_AGENT,
            "roles": ROUTER_ROLES,
        }
        self.answers.send([WELCOME, int(connection.session_id), welcome_details])
        connection.joined()
        session = {
            "session": int(connection.session_id),
            "authid": authid,
            "authrole": authrole,
            "authmethod": method,
            "authprovider": user.provider,
            "transport": {"type": "websocket"},
        }
        self.broker.meta.events.joined(connection, session)

    def aborted(self, message: list[Any]) -> None:
        """ABORT from the client, in any state: close without a word."""
        length(message, 3, 3, "ABORT")
        self.ended = True
        self.answers.connection.close(CLOSE_NORMAL, "aborted by the client")

    def goodbye(self, message: list[Any]) -> None:
        """GOODBYE from the client: answer what came before, then leave."""
        length(message, 3, 3, "GOODBYE")
        self.ended = True
        self.answers.connection.enqueue(self._goodbye_and_out)

    async def _goodbye_and_out(self) -> None:
        self.answers.send([GOODBYE, {}, GOODBYE_AND_OUT])
        self.answers.connection.close(CLOSE_NORMAL, "goodbye")

    def closing(self, code: int, reason: str) -> None:
        """The server closes with ``code``: GOODBYE after WELCOME, else ABORT, with its URI
        (once: not after the session ended)."""
        if self.ended:
            return
        self.ended = True
        details = {"message": reason} if reason else {}
        kind, reason_uri = close_message(code, self.welcomed)
        self.answers.send([kind, details, reason_uri])
