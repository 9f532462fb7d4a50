"""WAMP v2 Basic Profile (broker and dealer roles): its codes, serializers and ``Wamp2Session``.

A connection whose client chose ``wamp.2.json`` or ``wamp.2.msgpack`` gets a ``Wamp2Session``. It
parses and encodes v2 and nothing else; its verbs go to the same ``Broker`` as v1's:

- SUBSCRIBE / UNSUBSCRIBE / PUBLISH run the topic hooks (``secure()`` first), CALL runs the RPC
  handler; a ``Failure`` becomes ERROR with an error URI chosen by its GOS code;
- keyword arguments pass through: a PUBLISH's ``ArgumentsKw`` reach v2 subscribers as EVENT
  ``ArgumentsKw`` (v1 subscribers get the dict), a CALL's reach the RPC method as its params;
- session ids are integers in v2 and decimal strings everywhere else (``connection.session_id``
  of session 42 is ``"42"``), so PUBLISH ``exclude``/``eligible`` mean the same in both versions;
- a subscription id belongs to the topic, not to the subscriber, so one EVENT frame serves
  every v2 subscriber of the topic (see ``Topic.broadcast``).

Protocol violations are answered with ABORT ``wamp.error.protocol_violation`` and the connection is
closed; nothing a client sends reaches other clients' sessions.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

import msgpack

from gos_web_socket.app.close_codes import (
    CLIENT_BROKE_PROTOCOL,
    CLOSE_GOING_AWAY,
    CLOSE_NORMAL,
    CLOSE_POLICY_VIOLATION,
)
from gos_web_socket.app.exceptions import PayloadRejected, ProtocolError
from gos_web_socket.app.history import Recovery
from gos_web_socket.app.limits import decode_json
from gos_web_socket.app.message import dumps
from gos_web_socket.app.position import Position
from gos_web_socket.app.server.session import (
    MAX_ID,
    SERVER_AGENT,
    Failure,
    FrameBuilder,
    KeywordArguments,
    Result,
    Session,
    WireFormat,
    new_publication_id,
)

if TYPE_CHECKING:
    from gos_web_socket.app.auth.user import User
    from gos_web_socket.app.server.broker import Broker
    from gos_web_socket.app.server.connection import WampConnection
    from gos_web_socket.app.server.topic import Topic

logger = logging.getLogger(__name__)

HELLO, WELCOME, ABORT, CHALLENGE, AUTHENTICATE, GOODBYE, ERROR = 1, 2, 3, 4, 5, 6, 8
PUBLISH, PUBLISHED = 16, 17
SUBSCRIBE, SUBSCRIBED, UNSUBSCRIBE, UNSUBSCRIBED, EVENT = 32, 33, 34, 35, 36
CALL, RESULT = 48, 50
REGISTER, UNREGISTER = 64, 66

# Error and close reasons of the Basic Profile.
PROTOCOL_VIOLATION = "wamp.error.protocol_violation"
NO_SUCH_REALM = "wamp.error.no_such_realm"
INVALID_URI = "wamp.error.invalid_uri"
INVALID_ARGUMENT = "wamp.error.invalid_argument"
NO_SUCH_PROCEDURE = "wamp.error.no_such_procedure"
NO_SUCH_SUBSCRIPTION = "wamp.error.no_such_subscription"
NO_SUCH_REGISTRATION = "wamp.error.no_such_registration"
NOT_AUTHORIZED = "wamp.error.not_authorized"
RUNTIME_ERROR = "wamp.error.runtime_error"
SYSTEM_SHUTDOWN = "wamp.close.system_shutdown"
CLOSE_REALM = "wamp.close.close_realm"
GOODBYE_AND_OUT = "wamp.close.goodbye_and_out"

ROUTER_ROLES = {
    "broker": {"features": {"publisher_exclusion": True, "subscriber_blackwhite_listing": True}},
    "dealer": {"features": {}},
}

# Custom attributes (WAMP: they start with "_") of history and recovery, docs/streams.md.
POSITION = "_position"
"""EVENT details: where the publication is in its channel's history ``{epoch, offset}``."""
RECOVER = "_recover"
"""SUBSCRIBE option: the last position the client saw (or true: tell me where I stand)."""
RECOVERY = "_recovery"
"""EVENT details of the answer to ``_recover``: ``{recovered, position, replayed}``."""

_ERROR_BY_CODE = {400: INVALID_ARGUMENT, 401: NOT_AUTHORIZED, 403: NOT_AUTHORIZED}
"""The GOS ``code`` of a ``Failure`` as a v2 error URI (anything else: runtime_error)."""


class Serializer(WireFormat):
    """One WAMP v2 serialization (its ``name`` is the subprotocol): message list to frame, back."""

    binary: ClassVar[bool]

    def __init__(self, frame: FrameBuilder) -> None:
        self._frame = frame

    @abstractmethod
    def encode(self, message: list[Any]) -> bytes: ...

    @abstractmethod
    def decode(self, payload: bytes) -> Any: ...

    def frame(self, message: list[Any]) -> bytes:
        """The complete frame of ``message``, ready for ``write_frame``."""
        return self._frame(self.encode(message), self.binary)

    def event_frame(
        self,
        topic: str,
        subscription: int,
        publication: int,
        payload: Any,
        position: Position | None = None,
    ) -> bytes:
        """EVENT ``[36, subscription, publication, details, [payload]]`` as one frame; a
        ``KeywordArguments`` payload is the EVENT's ``ArgumentsKw``: ``[..., {}, [], kwargs]``.
        ``details`` is ``{"_position": {"epoch", "offset"}}`` on a channel with history."""
        details = {POSITION: position.as_dict()} if position is not None else {}
        if isinstance(payload, KeywordArguments):
            return self.frame([EVENT, subscription, publication, details, [], payload])
        return self.frame([EVENT, subscription, publication, details, [payload]])


class JsonSerializer(Serializer):
    name = "wamp.2.json"
    binary = False

    def __init__(self, frame: FrameBuilder, max_bytes: int = 65536, max_depth: int = 64) -> None:
        super().__init__(frame)
        self.max_bytes = max_bytes
        self.max_depth = max_depth

    def encode(self, message: list[Any]) -> bytes:
        return dumps(message).encode()

    def decode(self, payload: bytes) -> Any:
        """Bounded in size and depth (``PayloadRejected``: 1007, or 1009 when too big)."""
        return decode_json(payload, self.max_bytes, self.max_depth)


class MsgpackSerializer(Serializer):
    name = "wamp.2.msgpack"
    binary = True

    def encode(self, message: list[Any]) -> bytes:
        return msgpack.packb(message, use_bin_type=True)  # type: ignore[no-any-return]

    def decode(self, payload: bytes) -> Any:
        return msgpack.unpackb(payload, raw=False)


def serializers(
    frame: FrameBuilder, max_bytes: int = 65536, max_depth: int = 64
) -> dict[str, Serializer]:
    """The v2 serializers of one server, by WebSocket subprotocol; JSON frames are decoded
    within ``max_bytes`` and ``max_depth`` (``server.max_message_size``, ``json_max_depth``)."""
    json_serializer = JsonSerializer(frame, max_bytes, max_depth)
    return {json_serializer.name: json_serializer, MsgpackSerializer.name: MsgpackSerializer(frame)}


@dataclass(slots=True)
class Request:
    """One v2 request: what its answer needs, and whether it was answered (once only)."""

    kind: int
    id: int
    answer_errors: bool = True
    answered: bool = False


def _id(value: Any, what: str) -> int:
    if type(value) is not int or not 1 <= value <= MAX_ID:
        raise ProtocolError(f"{what} must be an id (an integer in [1, 2^53]), got {value!r}")
    return value


def _dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProtocolError(f"{what} must be a dict")
    return value


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ProtocolError(f"{what} must be a string")
    return value


def _length(message: list[Any], low: int, high: int, name: str) -> None:
    if not low <= len(message) <= high:
        raise ProtocolError(f"{name} has {len(message)} elements")


def _payload(message: list[Any], start: int, name: str) -> tuple[list[Any], dict[str, Any]]:
    """The optional ``Arguments|list, ArgumentsKw|dict`` from index ``start``."""
    args = message[start] if len(message) > start else []
    kwargs = message[start + 1] if len(message) > start + 1 else {}
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise ProtocolError(f"{name} arguments must be a list and keyword arguments a dict")
    return args, kwargs


def _ids(options: dict[str, Any], key: str) -> list[str] | None:
    """A PUBLISH option listing session ids, as our string session ids."""
    if key not in options:
        return None
    value = options[key]
    if not isinstance(value, list):
        raise ProtocolError(f"PUBLISH option {key} must be a list of session ids")
    return [str(_id(item, f"PUBLISH option {key}")) for item in value]


def _flag(options: dict[str, Any], key: str, default: bool) -> bool:
    value = options.get(key, default)
    if type(value) is not bool:
        raise ProtocolError(f"option {key} must be a boolean")
    return value


class Wamp2Session(Session[Request]):
    """The WAMP v2 side of one connection: session state, parsing and the v2 replies."""

    authenticates_in_session = True  # at HELLO: handshake credentials or a ticket

    def __init__(
        self, connection: WampConnection, serializer: Serializer, broker: Broker, realm: str
    ) -> None:
        self.connection = connection
        self.wire_format: Serializer = serializer
        self.broker = broker
        self.realm = realm
        self.welcomed = False
        """True from the WELCOME on; the session then counts as connected (events fired)."""
        self.ended = False
        """True once ABORT or GOODBYE was sent or received: later messages are ignored."""
        self.challenged = False
        """True from CHALLENGE (ticket) until AUTHENTICATE."""

    @property
    def session_id(self) -> int:
        return int(self.connection.session_id)

    def send(self, message: list[Any]) -> bool:
        return self.connection.write_frame(self.wire_format.frame(message))

    # -- the session contract -----------------------------------------------------------------

    def opened(self) -> None:
        """Nothing to send: the client speaks first (HELLO)."""

    def receive(self, payload: bytes, is_binary: bool) -> None:
        """Handle one WebSocket message; a protocol violation aborts this session only."""
        if self.ended:
            return
        try:
            self._handle(self._decode(payload, is_binary))
        except ProtocolError as exc:
            self.connection.fail(str(exc), exc)

    def closing(self, code: int, reason: str) -> None:
        """The server closes the connection: say so in WAMP first (ABORT or GOODBYE)."""
        if self.ended:
            return
        self.ended = True
        details = {"message": reason} if reason else {}
        if code in CLIENT_BROKE_PROTOCOL:
            self.send([ABORT, details, PROTOCOL_VIOLATION])
            return
        reasons = {CLOSE_GOING_AWAY: SYSTEM_SHUTDOWN, CLOSE_POLICY_VIOLATION: NOT_AUTHORIZED}
        reason_uri = reasons.get(code, CLOSE_REALM)
        self.send([GOODBYE if self.welcomed else ABORT, details, reason_uri])

    def event(self, topic: str, payload: Any) -> bool:
        """EVENT to this client alone, on its subscription to ``topic``; False without one."""
        entry = self.connection.subscriptions.get(topic)
        if entry is None:
            return False
        subscription = entry[0].subscription_id
        frame = self.wire_format.event_frame(topic, subscription, new_publication_id(), payload)
        return self.connection.write_frame(frame)

    def result(self, request: Request, result: Result) -> None:
        """RESULT: a list is the arguments, a dict the one argument, ``KeywordArguments`` the
        keyword arguments."""
        value = result.value
        message: list[Any] = [RESULT, request.id, {}]
        if isinstance(value, KeywordArguments):
            message += [[], value]
        elif isinstance(value, list):
            if value:
                message.append(value)
        else:
            message.append([value])
        self._acknowledge(request, message)

    def error(self, request: Request, failure: Failure) -> None:
        """ERROR with the URI for the failure's GOS code; its details are the ERROR's kwargs."""
        code = failure.code
        if failure.no_route:
            error_uri = NO_SUCH_PROCEDURE if request.kind == CALL else INVALID_URI
        elif code == 404 and request.kind == CALL:
            error_uri = NO_SUCH_PROCEDURE
        elif type(code) is int:
            error_uri = _ERROR_BY_CODE.get(code, RUNTIME_ERROR)
        else:
            error_uri = RUNTIME_ERROR
        self._error(request, error_uri, failure.desc, failure.details)

    # -- parsing ------------------------------------------------------------------------------

    def _decode(self, payload: bytes, is_binary: bool) -> list[Any]:
        serializer = self.wire_format
        if is_binary != serializer.binary:
            kind = "binary" if is_binary else "text"
            raise PayloadRejected(
                "binary_on_text_protocol", f"a {kind} message on {serializer.name}"
            )
        try:
            message = serializer.decode(payload)
        except ProtocolError:
            raise
        except Exception as exc:  # every codec has its own error classes
            raise ProtocolError(f"undecodable message: {exc}") from None
        if not isinstance(message, list) or not message or type(message[0]) is not int:
            raise ProtocolError("a WAMP message must be a list starting with an integer type")
        return message

    def _handle(self, message: list[Any]) -> None:
        kind = message[0]
        if kind == ABORT:
            _length(message, 3, 3, "ABORT")
            self.ended = True
            self.connection.close(CLOSE_NORMAL, "aborted by the client")
        elif not self.welcomed:
            if kind == AUTHENTICATE and self.challenged:
                self._authenticate(message)
                return
            if kind != HELLO or self.challenged:
                raise ProtocolError(f"message type {kind} before HELLO")
            self._hello(message)
        elif kind == SUBSCRIBE:
            _length(message, 4, 4, "SUBSCRIBE")
            request = Request(SUBSCRIBE, _id(message[1], "SUBSCRIBE request"))
            options = _dict(message[2], "SUBSCRIBE options")
            uri = _str(message[3], "SUBSCRIBE topic")
            recover = _recover_option(options)
            self._enqueue(request, partial(self._subscribe, request, uri, recover))
        elif kind == UNSUBSCRIBE:
            _length(message, 3, 3, "UNSUBSCRIBE")
            request = Request(UNSUBSCRIBE, _id(message[1], "UNSUBSCRIBE request"))
            subscription = _id(message[2], "UNSUBSCRIBE subscription")
            self._enqueue(request, partial(self._unsubscribe, request, subscription))
        elif kind == PUBLISH:
            self._publish_message(message)
        elif kind == CALL:
            self._call_message(message)
        elif kind == GOODBYE:
            _length(message, 3, 3, "GOODBYE")
            self.ended = True  # answer what came before, then leave
            self.connection.enqueue(self._goodbye)
        elif kind in (REGISTER, UNREGISTER):
            # The server's procedures are its RpcHandlers; clients cannot add callees.
            _length(message, 3, 4, "REGISTER/UNREGISTER")
            request_id = _id(message[1], "request")
            error = NOT_AUTHORIZED if kind == REGISTER else NO_SUCH_REGISTRATION
            desc = "this router does not accept procedure registrations from clients"
            self.send([ERROR, kind, request_id, {}, error, [desc]])
        elif kind == HELLO:
            raise ProtocolError("HELLO received after the session was established")
        else:
            raise ProtocolError(f"unexpected message type {kind}")

    def _hello(self, message: list[Any]) -> None:
        _length(message, 3, 3, "HELLO")
        realm = _str(message[1], "HELLO realm")
        details = _dict(message[2], "HELLO details")
        roles = details.get("roles")
        if not isinstance(roles, dict) or not roles:
            raise ProtocolError("HELLO must announce at least one role in details.roles")
        connection = self.connection
        if realm != self.realm:
            logger.info("connection %s asked for unknown realm %r", connection.session_id, realm)
            self.ended = True
            self.send([ABORT, {"message": f"no realm {realm!r} here"}, NO_SUCH_REALM])
            connection.close(CLOSE_NORMAL, "no such realm")
            return
        authenticator = self.broker.authenticator
        methods = details.get("authmethods")
        if isinstance(methods, list) and "ticket" in methods and authenticator.takes_tickets:
            self.challenged = True
            self.send([CHALLENGE, "ticket", {}])
            return
        self._admit(authenticator.admit(connection), "anonymous")

    def _authenticate(self, message: list[Any]) -> None:
        """AUTHENTICATE ``[5, ticket, extra]`` after CHALLENGE ticket."""
        _length(message, 2, 3, "AUTHENTICATE")
        ticket = _str(message[1], "AUTHENTICATE signature")
        self.challenged = False
        self._admit(self.broker.authenticator.admit(self.connection, ticket), "ticket")

    def _admit(self, user: User | None, method: str) -> None:
        """WELCOME the user the authenticator admitted, or ABORT not_authorized."""
        connection = self.connection
        if user is None:
            self.ended = True
            self.send([ABORT, {"message": "not authorized"}, NOT_AUTHORIZED])
            connection.close(CLOSE_NORMAL, "not authorized")
            return
        self.welcomed = True
        if user.is_anonymous:
            authid, authrole, method = connection.session_id, "anonymous", "anonymous"
        else:
            authid, authrole = user.id or "", min(user.roles, default="user")
            method = method if method == "ticket" else user.provider
        welcome_details = {
            "realm": self.realm,
            "authid": authid,
            "authrole": authrole,
            "authmethod": method,
            "agent": SERVER_AGENT,
            "roles": ROUTER_ROLES,
        }
        self.send([WELCOME, self.session_id, welcome_details])
        connection.joined()

    def _publish_message(self, message: list[Any]) -> None:
        _length(message, 4, 6, "PUBLISH")
        request_id = _id(message[1], "PUBLISH request")
        options = _dict(message[2], "PUBLISH options")
        uri = _str(message[3], "PUBLISH topic")
        args, kwargs = _payload(message, 4, "PUBLISH")
        acknowledge = _flag(options, "acknowledge", False)
        exclude = _ids(options, "exclude") or []
        eligible = _ids(options, "eligible") or []
        if _flag(options, "exclude_me", True):
            exclude.append(self.connection.session_id)
        request = Request(PUBLISH, request_id, answer_errors=acknowledge)
        job = partial(self._publish, request, uri, args, kwargs, exclude, eligible, acknowledge)
        self._enqueue(request, job)

    def _call_message(self, message: list[Any]) -> None:
        _length(message, 4, 6, "CALL")
        request = Request(CALL, _id(message[1], "CALL request"))
        _dict(message[2], "CALL options")
        uri = _str(message[3], "CALL procedure")
        args, kwargs = _payload(message, 4, "CALL")
        self._enqueue(request, partial(self._call, request, uri, args, kwargs), call=True)

    # -- requests (run in order by the connection's worker) -----------------------------------

    def _enqueue(
        self, request: Request, job: Callable[[], Awaitable[None]], call: bool = False
    ) -> None:
        async def run() -> None:
            try:
                await job()
            except ProtocolError:
                raise  # the client's fault (a spent budget): the connection closes it
            except Exception as exc:
                logger.error(
                    "connection %s: v2 request %d failed: %r",
                    self.connection.session_id,
                    request.id,
                    exc,
                )
                logger.debug("traceback", exc_info=True)
                self._error(request, RUNTIME_ERROR, str(exc))

        (self.connection.enqueue_call if call else self.connection.enqueue)(run)

    async def _subscribe(
        self, request: Request, uri: str, recover: tuple[bool, Position | None] = (False, None)
    ) -> None:
        held: list[Topic] = []

        def accepted(topic: Topic) -> None:  # SUBSCRIBED goes before what on_subscribe sends
            if request.answered:
                return
            self._acknowledge(request, [SUBSCRIBED, request.id, topic.subscription_id])
            if recover[0]:  # pushes wait until the recovery is written (``_recover``)
                topic.hold(self.connection)
                held.append(topic)

        outcome = await self.broker.subscribe(self.connection, uri, accepted)
        if isinstance(outcome, Failure):
            self._failed(request, outcome)
        else:  # subscribed before, or no handler for the route: subscribed all the same
            accepted(outcome)
        for topic in held:
            await self._recover(topic, recover[1])

    async def _recover(self, topic: Topic, since: Position | None) -> None:
        """Replay what was missed since ``since``, then say how that went (``_recovery``),
        then what was broadcast while the recovery was prepared.

        The EVENTs carry their ``_position``; the report has no arguments and details
        ``{"_recovery": {"recovered", "position", "replayed"}}``: ``recovered`` false means
        that pushes were missed which the history no longer has (reload your state).
        """
        try:
            recovery = await self.broker.recover(topic, since)
        finally:
            meanwhile = topic.release(self.connection)
        if not topic.has(self.connection):
            return  # it left meanwhile (closed, or its on_subscribe failed)
        if meanwhile is None:  # the client was held so long that broadcasts were dropped
            recovery = Recovery(recovery.publications, False, recovery.position)
            meanwhile = []
        topic.replay(self.connection, recovery)
        report = recovery.as_dict(with_publications=False)
        report["replayed"] = len(recovery.publications)
        self.send([EVENT, topic.subscription_id, new_publication_id(), {RECOVERY: report}])
        reached = recovery.position
        for position, frame in meanwhile:
            replayed = (
                position is not None
                and reached is not None
                and position.epoch == reached.epoch
                and position.offset <= reached.offset
            )
            if not replayed:  # those the replay had are not sent twice
                self.connection.write_frame(frame)

    async def _unsubscribe(self, request: Request, subscription: int) -> None:
        joined = self.connection.subscriptions.items()
        uri = next((uri for uri, (t, _) in joined if t.subscription_id == subscription), None)
        if uri is None:
            self._error(request, NO_SUCH_SUBSCRIPTION, f"no subscription {subscription}")
            return
        accepted = partial(self._acknowledge, request, [UNSUBSCRIBED, request.id])
        failure = await self.broker.unsubscribe(self.connection, uri, accepted)
        if failure is not None:
            self._failed(request, failure)
        accepted()

    async def _publish(
        self,
        request: Request,
        uri: str,
        args: list[Any],
        kwargs: dict[str, Any],
        exclude: list[str],
        eligible: list[str],
        acknowledge: bool,
    ) -> None:
        if args and kwargs:
            self._error(request, INVALID_ARGUMENT, "publish either arguments or keyword arguments")
            return
        event: Any = KeywordArguments(kwargs) if kwargs else _one(args)
        failure = await self.broker.publish(self.connection, uri, event, exclude, eligible)
        if failure is not None:
            self._failed(request, failure)
        elif acknowledge:
            self._acknowledge(request, [PUBLISHED, request.id, new_publication_id()])

    async def _call(
        self, request: Request, uri: str, args: list[Any], kwargs: dict[str, Any]
    ) -> None:
        if args and kwargs:
            desc = "call with either arguments or keyword arguments"
            self._error(request, INVALID_ARGUMENT, desc)
            return
        if kwargs:
            params: Any = KeywordArguments(kwargs)
        elif len(args) == 1 and isinstance(args[0], list | dict):
            params = args[0]  # as in v1: a single list or dict argument is the params
        else:
            params = args
        outcome = await self.broker.call(self.connection, uri, params)
        if isinstance(outcome, Result):
            self.result(request, outcome)
        else:
            self._failed(request, outcome)

    async def _goodbye(self) -> None:
        self.send([GOODBYE, {}, GOODBYE_AND_OUT])
        self.connection.close(CLOSE_NORMAL, "goodbye")

    # -- answers ------------------------------------------------------------------------------

    def _acknowledge(self, request: Request, message: list[Any]) -> None:
        """Send the success reply of ``request``, unless it was answered."""
        if not request.answered:
            request.answered = True
            self.send(message)

    def _failed(self, request: Request, failure: Failure) -> None:
        self.error(request, failure)
        if failure.disconnect:
            self.connection.refuse()

    def _error(
        self, request: Request, error_uri: str, desc: str, kwargs: dict[str, Any] | None = None
    ) -> None:
        """ERROR for ``request``, unless it was answered or wants no errors."""
        if request.answered:
            logger.debug("connection %s: v2 error not sent: %s", self.connection.session_id, desc)
            return
        request.answered = True
        if not request.answer_errors:
            return
        message: list[Any] = [ERROR, request.kind, request.id, {}, error_uri, [desc]]
        if kwargs:
            message.append(kwargs)
        self.send(message)


def _recover_option(options: dict[str, Any]) -> tuple[bool, Position | None]:
    """SUBSCRIBE option ``_recover``: a position to recover from, or true (where do I stand)."""
    if RECOVER not in options:
        return False, None
    value = options[RECOVER]
    if value is True:
        return True, None
    return True, Position.parse(value, f"SUBSCRIBE option {RECOVER}")


def _one(args: list[Any]) -> Any:
    """The event of positional arguments: the one argument, the list of several, or None."""
    return args[0] if len(args) == 1 else args or None
