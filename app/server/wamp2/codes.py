"""WAMP v2 message types, error and close URIs, and how GOS outcomes map onto them.

Dependency-free apart from the close codes, so the client, the tests and a future dealer can
name a message type without loading a session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gos_web_socket.app.close_codes import (
    CLIENT_BROKE_PROTOCOL,
    CLOSE_GOING_AWAY,
    CLOSE_POLICY_VIOLATION,
)

if TYPE_CHECKING:
    from gos_web_socket.app.server.session import Failure

HELLO, WELCOME, ABORT, CHALLENGE, AUTHENTICATE, GOODBYE, ERROR = 1, 2, 3, 4, 5, 6, 8
PUBLISH, PUBLISHED = 16, 17
SUBSCRIBE, SUBSCRIBED, UNSUBSCRIBE, UNSUBSCRIBED, EVENT = 32, 33, 34, 35, 36
CALL, CANCEL, RESULT = 48, 49, 50
REGISTER, REGISTERED, UNREGISTER, UNREGISTERED = 64, 65, 66, 67
INVOCATION, INTERRUPT, YIELD = 68, 69, 70

# Error and close reasons of the Basic Profile.
PROTOCOL_VIOLATION = "wamp.error.protocol_violation"
NO_SUCH_REALM = "wamp.error.no_such_realm"
INVALID_URI = "wamp.error.invalid_uri"
INVALID_ARGUMENT = "wamp.error.invalid_argument"
NO_SUCH_PROCEDURE = "wamp.error.no_such_procedure"
NO_SUCH_SUBSCRIPTION = "wamp.error.no_such_subscription"
NO_SUCH_REGISTRATION = "wamp.error.no_such_registration"
NO_SUCH_SESSION = "wamp.error.no_such_session"
PROCEDURE_ALREADY_EXISTS = "wamp.error.procedure_already_exists"
PROCEDURE_EXISTS_WITH_DIFFERENT_INVOCATION_POLICY = (
    "wamp.error.procedure_exists_with_different_invocation_policy"
)
CANCELED = "wamp.error.canceled"
TIMEOUT = "wamp.error.timeout"
UNAVAILABLE = "wamp.error.unavailable"
OPTION_DISALLOWED_DISCLOSE_ME = "wamp.error.option_disallowed.disclose_me"
NOT_AUTHORIZED = "wamp.error.not_authorized"
RUNTIME_ERROR = "wamp.error.runtime_error"
SYSTEM_SHUTDOWN = "wamp.close.system_shutdown"
CLOSE_REALM = "wamp.close.close_realm"
GOODBYE_AND_OUT = "wamp.close.goodbye_and_out"

ROUTER_ROLES = {
    "broker": {
        "features": {
            "publisher_exclusion": True,
            "subscriber_blackwhite_listing": True,
            "pattern_based_subscription": True,
            "publisher_identification": True,
            "session_meta_api": True,
            "subscription_meta_api": True,
        }
    },
    "dealer": {
        "features": {
            "progressive_call_results": True,
            "call_canceling": True,
            "call_timeout": True,
            "shared_registration": True,
            "caller_identification": True,
            "pattern_based_registration": True,
            "session_meta_api": True,
            "registration_meta_api": True,
        }
    },
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

_CLOSE_REASONS = {CLOSE_GOING_AWAY: SYSTEM_SHUTDOWN, CLOSE_POLICY_VIOLATION: NOT_AUTHORIZED}
"""The WebSocket close code the server is about to send as a GOODBYE/ABORT reason."""


def error_uri(failure: Failure, kind: int) -> str:
    """The ERROR URI of ``failure`` answering a request of type ``kind``, by its GOS code."""
    code = failure.code
    if failure.no_route:
        return NO_SUCH_PROCEDURE if kind == CALL else INVALID_URI
    if code == 404 and kind == CALL:
        return NO_SUCH_PROCEDURE
    if type(code) is int:
        return _ERROR_BY_CODE.get(code, RUNTIME_ERROR)
    return RUNTIME_ERROR


def close_message(code: int, welcomed: bool) -> tuple[int, str]:
    """What says the WebSocket close ``code`` in WAMP first: (GOODBYE or ABORT, reason URI)."""
    if code in CLIENT_BROKE_PROTOCOL:
        return ABORT, PROTOCOL_VIOLATION
    return (GOODBYE if welcomed else ABORT), _CLOSE_REASONS.get(code, CLOSE_REALM)
