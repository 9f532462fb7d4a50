"""WAMP v2 Basic Profile (broker and dealer roles) for a ``WampConnection``.

A connection whose client chose ``wamp.2.json`` or ``wamp.2.msgpack`` gets a ``Wamp2Session``;
every message then goes through it instead of the WAMP v1 parser. The session maps v2 verbs onto
the same router, topic manager, topic handlers and RPC handlers that serve v1:

- SUBSCRIBE / UNSUBSCRIBE / PUBLISH run the topic hooks (``secure()`` first), CALL runs the RPC
  handler; their v1 error answers (CALLERROR) become v2 ERROR messages;
- session ids are integers in v2 and decimal strings everywhere else (``connection.session_id``
  of session 42 is ``"42"``), so PUBLISH ``exclude``/``eligible`` mean the same in both versions;
- a subscription id belongs to the topic, not to the subscriber, so one EVENT frame serves
  every v2 subscriber of the topic (see ``Topic.broadcast``).

Protocol violations are answered with ABORT ``wamp.error.protocol_violation`` and the connection is
closed; nothing a client sends reaches other clients' sessions.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

import msgpack

from app.exceptions import ProtocolError, ResourceNotFound
from app.message import dumps

if TYPE_CHECKING:
    from app.server.protocol import WampConnection

logger = logging.getLogger(__name__)

HELLO, WELCOME, ABORT, GOODBYE, ERROR = 1, 2, 3, 6, 8
PUBLISH, PUBLISHED = 16, 17
SUBSCRIBE, SUBSCRIBED, UNSUBSCRIBE, UNSUBSCRIBED, EVENT = 32, 33, 34, 35, 36
CALL, RESULT = 48, 50
REGISTER, UNREGISTER = 64, 66

MAX_ID = 2**53
"""IDs are integers in [1, 2^53] so that JavaScript clients read them exactly."""

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

_ERROR_BY_CODE = {400: INVALID_ARGUMENT, 401: NOT_AUTHORIZED, 403: NOT_AUTHORIZED}
"""The GOS ``code`` of a CALLERROR, as a v2 error URI (anything else: runtime_error)."""

_publication_ids = random.Random(secrets.randbits(64))


def new_session_id() -> int:
    """A random session id in [1, 2^53] (the spec's global scope)."""
    return secrets.randbelow(MAX_ID) + 1


def new_publication_id() -> int:
    """A random publication id in [1, 2^53]; not a secret, so the fast generator."""
    return _publication_ids.randint(1, MAX_ID)


FrameBuilder = Callable[[bytes, bool], bytes]
"""(payload, is_binary) to the wire bytes of one server frame (``WampServer.frame``)."""


class Serializer(ABC):
    """One WAMP v2 serialization: how a message list becomes a frame and back."""

    subprotocol: ClassVar[str]
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

    def event_frame(self, subscription: int, publication: int, payload: Any) -> bytes:
        """EVENT ``[36, subscription, publication, {}, [payload]]`` as one frame."""
        return self.frame([EVENT, subscription, publication, {}, [payload]])

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class JsonSerializer(Serializer):
    subprotocol = "wamp.2.json"
    binary = False

    def encode(self, message: list[Any]) -> bytes:
        return dumps(message).encode()

    def decode(self, payload: bytes) -> Any:
        return json.loads(payload)


class MsgpackSerializer(Serializer):
    subprotocol = "wamp.2.msgpack"
    binary = True

    def encode(self, message: list[Any]) -> bytes:
        return msgpack.packb(message, use_bin_type=True)  # type: ignore[no-any-return]

    def decode(self, payload: bytes) -> Any:
        return msgpack.unpackb(payload, raw=False)


def serializers(frame: FrameBuilder) -> dict[str, Serializer]:
    """The v2 serializers of one server, by WebSocket subprotocol."""
    return {cls.subprotocol: cls(frame) for cls in (JsonSerializer, MsgpackSerializer)}


@dataclass(slots=True)
class _Request:
    """The v2 request the connection's worker is handling now."""

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


class Wamp2Session:
    """The WAMP v2 side of one connection: session state, parsing and the v2 replies."""

    def __init__(self, connection: WampConnection, serializer: Serializer) -> None:
        self.connection = connection
        self.serializer = serializer
        self.welcomed = False
        """True from the WELCOME on; the session then counts as connected (events fired)."""
        self.ended = False
        """True once ABORT or GOODBYE was sent or received: later messages are ignored."""
        self._current: _Request | None = None

    @property
    def session_id(self) -> int:
        return int(self.connection.session_id)

    def send(self, message: list[Any]) -> bool:
        return self.connection.write_frame(self.serializer.frame(message))

    # -- input ------------------------------------------------------------------------------

    def receive(self, payload: bytes, is_binary: bool) -> None:
        """Handle one WebSocket message; a protocol violation aborts this session only."""
        if self.ended:
            return
        try:
            self._handle(self._decode(payload, is_binary))
        except ProtocolError as exc:
            self.connection.fail(str(exc), exc)

    def _decode(self, payload: bytes, is_binary: bool) -> list[Any]:
        serializer = self.serializer
        if is_binary != serializer.binary:
            kind = "binary" if is_binary else "text"
            raise ProtocolError(f"a {kind} message on {serializer.subprotocol}")
        try:
            message = serializer.decode(payload)
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
            self.connection.close(1000, "aborted by the client")
        elif not self.welcomed:
            if kind != HELLO:
                raise ProtocolError(f"message type {kind} before HELLO")
            self._hello(message)
        elif kind == SUBSCRIBE:
            _length(message, 4, 4, "SUBSCRIBE")
            request_id = _id(message[1], "SUBSCRIBE request")
            _dict(message[2], "SUBSCRIBE options")
            uri = _str(message[3], "SUBSCRIBE topic")
            self._enqueue(SUBSCRIBE, request_id, partial(self._subscribe, request_id, uri))
        elif kind == UNSUBSCRIBE:
            _length(message, 3, 3, "UNSUBSCRIBE")
            request_id = _id(message[1], "UNSUBSCRIBE request")
            subscription = _id(message[2], "UNSUBSCRIBE subscription")
            job = partial(self._unsubscribe, request_id, subscription)
            self._enqueue(UNSUBSCRIBE, request_id, job)
        elif kind == PUBLISH:
            self._publish_message(message)
        elif kind == CALL:
            self._call_message(message)
        elif kind == GOODBYE:
            _length(message, 3, 3, "GOODBYE")
            self.ended = True  # answer what came before, then leave
            self.connection._enqueue(self._goodbye)
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
        expected = connection.app.settings.server.realm
        if realm != expected:
            logger.info("connection %s asked for unknown realm %r", connection.session_id, realm)
            self.ended = True
            self.send([ABORT, {"message": f"no realm {realm!r} here"}, NO_SUCH_REALM])
            connection.close(1000, "no such realm")
            return
        self.welcomed = True
        welcome_details = {
            "realm": expected,
            "authid": connection.session_id,
            "authrole": "anonymous",
            "authmethod": "anonymous",
            "agent": connection.factory.server,
            "roles": ROUTER_ROLES,
        }
        self.send([WELCOME, self.session_id, welcome_details])
        connection._enqueue(connection._connected)

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

        job = partial(self._publish, request_id, uri, args, kwargs, exclude, eligible, acknowledge)
        self._enqueue(PUBLISH, request_id, job, answer_errors=acknowledge)

    def _call_message(self, message: list[Any]) -> None:
        _length(message, 4, 6, "CALL")
        request_id = _id(message[1], "CALL request")
        _dict(message[2], "CALL options")
        uri = _str(message[3], "CALL procedure")
        args, kwargs = _payload(message, 4, "CALL")
        self._enqueue(CALL, request_id, partial(self._call, request_id, uri, args, kwargs))

    # -- jobs (run in order by the connection's worker) ---------------------------------------

    def _enqueue(
        self,
        kind: int,
        request_id: int,
        job: Callable[[], Awaitable[None]],
        answer_errors: bool = True,
    ) -> None:
        async def run() -> None:
            self._current = _Request(kind, request_id, answer_errors)
            try:
                await job()
            except Exception as exc:
                logger.error(
                    "connection %s: v2 request %d failed: %r",
                    self.connection.session_id,
                    request_id,
                    exc,
                )
                logger.debug("traceback", exc_info=True)
                self.error(RUNTIME_ERROR, str(exc))
            finally:
                self._current = None

        self.connection._enqueue(run)

    async def _subscribe(self, request_id: int, uri: str) -> None:
        connection = self.connection
        app = connection.app
        try:
            request = app.router.match(uri)
        except ResourceNotFound as exc:
            self.error(INVALID_URI, str(exc))
            return
        topic = app.manager.subscribe(connection, uri, request)
        if topic is None:  # subscribed already: the same subscription again
            known = connection.subscriptions[uri][0]
            self._acknowledge([SUBSCRIBED, request_id, known.subscription_id])
            return
        answer = [SUBSCRIBED, request_id, topic.subscription_id]
        # SUBSCRIBED must precede any EVENT that on_subscribe broadcasts.
        await app.topic_dispatcher.subscribe(
            connection, topic, request, accepted=partial(self._acknowledge, answer)
        )
        self._acknowledge(answer)  # no handler for the route: nothing ran, still subscribed

    async def _unsubscribe(self, request_id: int, subscription: int) -> None:
        connection = self.connection
        uri = next(
            (
                uri
                for uri, entry in connection.subscriptions.items()
                if entry[0].subscription_id == subscription
            ),
            None,
        )
        if uri is None:
            self.error(NO_SUCH_SUBSCRIPTION, f"no subscription {subscription}")
            return
        app = connection.app
        entry = app.manager.unsubscribe(connection, uri)
        answer = [UNSUBSCRIBED, request_id]
        if entry is not None:
            await app.topic_dispatcher.unsubscribe(
                connection, entry[0], entry[1], accepted=partial(self._acknowledge, answer)
            )
        self._acknowledge(answer)

    async def _publish(
        self,
        request_id: int,
        uri: str,
        args: list[Any],
        kwargs: dict[str, Any],
        exclude: list[str],
        eligible: list[str],
        acknowledge: bool,
    ) -> None:
        if args and kwargs:
            self.error(INVALID_ARGUMENT, "publish either arguments or keyword arguments")
            return
        event: Any = kwargs if kwargs else (args[0] if len(args) == 1 else args or None)
        connection = self.connection
        app = connection.app
        try:
            request = app.router.match(uri)
        except ResourceNotFound as exc:
            self.error(INVALID_URI, str(exc))
            return
        topic = app.manager.topic(uri)
        await app.topic_dispatcher.publish(connection, topic, request, event, exclude, eligible)
        if acknowledge:
            self._acknowledge([PUBLISHED, request_id, new_publication_id()])

    async def _call(
        self, request_id: int, uri: str, args: list[Any], kwargs: dict[str, Any]
    ) -> None:
        if args and kwargs:
            self.error(INVALID_ARGUMENT, "call with either arguments or keyword arguments")
            return
        if kwargs:
            params: Any = kwargs
        elif len(args) == 1 and isinstance(args[0], list | dict):
            params = args[0]  # as in v1: a single list or dict argument is the params
        else:
            params = args
        app = self.connection.app
        try:
            request = app.router.match(uri)
        except ResourceNotFound as exc:
            self.error(NO_SUCH_PROCEDURE, str(exc), {"code": 404, "params": params})
            return
        await app.rpc_dispatcher.call(self.connection, str(request_id), uri, request, params)

    async def _goodbye(self) -> None:
        self.send([GOODBYE, {}, GOODBYE_AND_OUT])
        self.connection.close(1000, "goodbye")

    # -- answers ------------------------------------------------------------------------------

    def _acknowledge(self, message: list[Any]) -> None:
        """Send the success reply of the current request, once."""
        current = self._current
        if current is None or current.answered:
            return
        current.answered = True
        self.send(message)

    def result(self, result: Any) -> None:
        """RESULT for the current CALL: a list is the arguments, a dict the one argument."""
        current = self._current
        if current is None or current.kind != CALL:
            logger.warning("connection %s: a result outside a v2 CALL", self.connection.session_id)
            return
        args = result if isinstance(result, list) else [result]
        message: list[Any] = [RESULT, current.id, {}]
        if args:
            message.append(args)
        self._acknowledge(message)

    def error(self, error_uri: str, desc: str, kwargs: dict[str, Any] | None = None) -> None:
        """ERROR for the current request, unless it was answered or wants no errors."""
        current = self._current
        if current is None or current.answered:
            logger.debug("connection %s: v2 error not sent: %s", self.connection.session_id, desc)
            return
        current.answered = True
        if not current.answer_errors:
            return
        message: list[Any] = [ERROR, current.kind, current.id, {}, error_uri, [desc]]
        if kwargs:
            message.append(kwargs)
        self.send(message)

    def call_error(self, desc: str, details: Any) -> None:
        """A v1 CALLERROR (``details.code`` as in GOS) as a v2 ERROR."""
        kwargs = details if isinstance(details, dict) else None
        code = kwargs.get("code") if kwargs else None
        current = self._current
        if code == 404 and current is not None and current.kind == CALL:
            error_uri = NO_SUCH_PROCEDURE
        elif type(code) is int:
            error_uri = _ERROR_BY_CODE.get(code, RUNTIME_ERROR)
        else:
            error_uri = RUNTIME_ERROR
        self.error(error_uri, desc, kwargs)

    def event(self, topic_uri: str, payload: Any) -> bool:
        """EVENT to this client alone, on its subscription to ``topic_uri``; False without one."""
        entry = self.connection.subscriptions.get(topic_uri)
        if entry is None:
            return False
        return self.send([EVENT, entry[0].subscription_id, new_publication_id(), {}, [payload]])

    def closing(self, code: int, reason: str) -> None:
        """The server closes the connection: say so in WAMP first (ABORT or GOODBYE)."""
        if self.ended:
            return
        self.ended = True
        details = {"message": reason} if reason else {}
        if code == 1007:
            self.send([ABORT, details, PROTOCOL_VIOLATION])
            return
        reason_uri = {1001: SYSTEM_SHUTDOWN, 1008: NOT_AUTHORIZED}.get(code, CLOSE_REALM)
        self.send([GOODBYE if self.welcomed else ABORT, details, reason_uri])
