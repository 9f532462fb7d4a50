"""The one error tree of the toolkit.

::

    GosWebSocketError                       (defined in settings.errors, below app)
     ├── ConfigurationError                  bad settings or route files (start-up stops)
     ├── ListenError                         a listener cannot bind its address (start-up stops)
     ├── PortsTaken                          the pre-start check: every taken listener port
     ├── ServiceNotFound (KeyError)          an unknown container id
     ├── NotRegistered (KeyError)            a registry lookup missed
     │    ├── PusherNotFound
     │    ├── PushHandlerNotFound
     │    ├── TopicNotFound
     │    └── RpcNotFound
     ├── RoutingError
     │    ├── RouteDefinitionError           a route that cannot be compiled or loaded
     │    ├── ResourceNotFound               the GOS name for the two "not found" cases
     │    │    ├── RouteNotFound             generate(): no route by that name
     │    │    └── NoRouteMatch              match(): no route matches the channel
     │    ├── MissingMandatoryParameters     generate(): variables without a value
     │    └── InvalidParameter               generate(): a value breaks its requirement
     ├── PusherError
     │    ├── InvalidPushArgument (ValueError)   bad data or an unknown context key
     │    └── PushFailed                     the transport could not deliver (``__cause__`` set);
     │         │                             after background pushes, ``failures`` lists each
     │         └── InvalidPayload            the data does not fit its route's payload model
     ├── PushHandlerError
     │    ├── MessageDecodeError (ValueError)  a body that is not a GOS envelope
     │    └── PushUnsupported                the topic has no ``on_push``
     └── WampError
          ├── ProtocolError                  a frame that breaks WAMP (closed with ``code``: 1007)
          │    ├── PayloadRejected           bad JSON, too deep: 1007; too big: 1009; binary: 1003
          │    └── LimitExceeded             a per-connection budget is spent (1008)
          ├── FirewallRejection              a secured topic refused a client
          │    └── NotAuthorized             a route's auth rule refused a subscribe/publish/call
          ├── AuthenticationFailed           a credential was refused (``reason`` says why)
          └── RpcError                       an RPC handler's failure, with a code for CALLERROR
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gos_web_socket.app.close_codes import (
    CLOSE_CODES,
    CLOSE_INVALID_PAYLOAD,
    CLOSE_POLICY_VIOLATION,
)

# Defined with the settings, which raise them and import no app module; re-exported here.
from gos_web_socket.settings.errors import (
    ConfigurationError as ConfigurationError,
    GosWebSocketError as GosWebSocketError,
)
from gos_web_socket.settings.nodes import ENV_PREFIX


class ListenError(GosWebSocketError):
    """A listener cannot bind: names the setting that chose the address, why, and the
    environment variable (and option) that moves it."""

    def __init__(self, setting: str, host: str, port: int, cause: BaseException) -> None:
        self.setting, self.host, self.port = setting, host, port
        errno = getattr(cause, "errno", None)
        reason = os.strerror(errno) if isinstance(errno, int) else str(cause)
        super().__init__(f"{setting}: cannot listen on {host}:{port}: {reason} ({self.hint})")

    @property
    def hint(self) -> str:
        """``move it with GOS_WEB_SOCKET__SERVER__PORT=... or -p PORT``."""
        key = self.setting if self.setting.endswith(".port") else f"{self.setting}.port"
        variable = ENV_PREFIX + key.upper().replace(".", "__")
        option = " or -p PORT" if key == "server.port" else ""
        return f"move it with {variable}=...{option}"


class PortsTaken(GosWebSocketError):
    """Start-up checked every listener's port first: each taken one, so a second instance
    learns all it must move at once."""

    def __init__(self, errors: Sequence[ListenError]) -> None:
        self.errors = list(errors)
        self.problems = [str(error) for error in self.errors]
        super().__init__("; ".join(self.problems))


class ServiceNotFound(GosWebSocketError, KeyError):
    """An id that names no service of the container."""

    def __init__(self, service_id: str, known: Iterable[str]) -> None:
        self.service_id = service_id
        self.known = sorted(known)
        super().__init__(
            f'Unknown service id "{service_id}"; known ones are: {", ".join(self.known)}'
        )

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class NotRegistered(GosWebSocketError, KeyError):
    """A registry has nothing under the name asked for."""

    kind = "service"

    def __init__(self, name: str, known: Iterable[str] = ()) -> None:
        self.name = name
        self.known = sorted(known)
        message = f'A {self.kind} named "{name}" has not been registered.'
        if self.known:
            message += f" Registered: {', '.join(self.known)}."
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.args[0])


class PusherNotFound(NotRegistered):
    kind = "pusher"


class PushHandlerNotFound(NotRegistered):
    kind = "push handler"


class TopicNotFound(NotRegistered):
    kind = "topic"


class RpcNotFound(NotRegistered):
    kind = "RPC handler"


class RoutingError(GosWebSocketError):
    """Base of the pub/sub router's errors."""


class RouteDefinitionError(RoutingError):
    """A route pattern, requirement or file that cannot be used."""


class ResourceNotFound(RoutingError):
    """GOS's ResourceNotFoundException: an unknown route or a channel nothing matches."""


class RouteNotFound(ResourceNotFound):
    """``generate()`` was given a route name that does not exist."""


class NoRouteMatch(ResourceNotFound):
    """``match()`` found no route for the channel."""


class MissingMandatoryParameters(RoutingError):
    """``generate()`` lacks values for some variables."""


class InvalidParameter(RoutingError):
    """``generate()`` got a value its requirement refuses."""


class PusherError(GosWebSocketError):
    """Base of the pushers' errors."""


class InvalidPushArgument(PusherError, ValueError):
    """``push()`` was called with data or context it cannot send."""


@dataclass(frozen=True)
class FailedPush:
    """One push that failed after ``push_sync()`` had returned (``confirm_mode: background``).

    It holds what the caller passed, so the push can be made again, and the transport's
    ``message_id`` when it has one (AMQP), to find it in the broker's or the server's logs.
    """

    route_name: str
    channel: str
    message_id: str | None
    error: BaseException
    data: Any = None
    route_parameters: Mapping[str, Any] = field(default_factory=dict)
    context: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return (
            f"{self.route_name} ({self.channel}), message id {self.message_id or 'none'}: "
            f"{self.error}"
        )


class PushFailed(PusherError):
    """The transport did not take the push; the cause is chained.

    ``message_id`` is the transport's id of the push when it has one. Raised by ``flush()`` /
    ``close()`` after background pushes, ``failures`` holds every one that failed.
    """

    def __init__(
        self,
        message: str,
        *,
        transport: str = "",
        route_name: str = "",
        message_id: str | None = None,
        failures: Sequence[FailedPush] = (),
    ) -> None:
        self.transport = transport
        self.route_name = route_name
        self.message_id = message_id
        self.failures = list(failures)
        super().__init__(message)


class InvalidPayload(PushFailed):
    """A push's data does not fit its route's payload model (``payload:`` in routing.yaml);
    the message names each field and why. Raised by the pushers at ``push()`` time and by the
    server's push handler, which refuses the push (``push_fail``) instead of broadcasting it."""


class PushHandlerError(GosWebSocketError):
    """Base of the push handlers' errors."""


class MessageDecodeError(PushHandlerError, ValueError):
    """A transport body that is not a GOS envelope ``{"topic": ..., "data": ...}``."""


class PushUnsupported(PushHandlerError):
    """A push reached a topic that does not implement ``on_push``."""

    def __init__(self, topic_name: str) -> None:
        self.topic_name = topic_name
        super().__init__(f'The "{topic_name}" topic does not support push notifications')


class WampError(GosWebSocketError):
    """Base of WAMP protocol and application errors."""


class ProtocolError(WampError):
    """A frame that breaks WAMP; the connection is closed with ``code`` (1007 invalid payload)."""

    code: int = CLOSE_INVALID_PAYLOAD


class PayloadRejected(ProtocolError):
    """A client frame the decoder refuses (``app.limits.decode_json``).

    ``reason`` names the rule: ``json_max_depth``, ``invalid_utf8`` or ``invalid_json``
    (close 1007), ``max_message_size`` (close 1009) or ``binary_on_text_protocol`` (1003).
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        self.code = CLOSE_CODES.get(reason, CLOSE_INVALID_PAYLOAD)
        super().__init__(message)


class LimitExceeded(ProtocolError):
    """A client spent one of its per-connection budgets; it is closed with 1008.

    ``reason`` is the setting's name under ``server.limits`` (``messages_per_second``,
    ``max_prefixes``, ...), what a metric per reason is labelled with.
    """

    code = CLOSE_POLICY_VIOLATION

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(f"{message} (server.limits.{reason})")


class MalformedCredentials(ProtocolError):
    """An ``Authorization`` header not in the scheme asked for (HTTP 400, ``invalid_request``)."""


class FirewallRejection(WampError):
    """A secured topic refused the client."""


class NotAuthorized(FirewallRejection):
    """A route's ``auth`` rule refused the connection's user (no user code ran)."""


class AuthenticationFailed(WampError):
    """A credential the client presented was refused; ``reason`` is one word for logs and
    metrics (``expired``, ``bad_signature``, ...), never the credential itself."""

    def __init__(self, reason: str, message: str = "") -> None:
        self.reason = reason
        super().__init__(message or reason)


class RpcError(WampError):
    """An RPC failure with the code GOS puts in CALLERROR details."""

    def __init__(self, message: str, code: int = 500) -> None:
        self.code = code
        super().__init__(message)


class MetaRefused(WampError):
    """A WAMP meta API call or subscription was refused; ``uri`` is its WAMP error URI
    (``wamp.error.no_such_session``, ``not_authorized``, ``invalid_argument`` ...)."""

    def __init__(self, uri: str, message: str) -> None:
        self.uri = uri
        super().__init__(message)
