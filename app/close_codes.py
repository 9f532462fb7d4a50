"""Every WebSocket close code the server sends or reads, in one place (RFC 6455 §7.4.1).

Dependency-free, so that the error tree (app/exceptions.py), the budgets (app/limits.py), the
sessions, the connection and the authenticator all import their codes from here.
"""

from __future__ import annotations

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
"""The server stops (v2: ``wamp.close.system_shutdown``)."""
CLOSE_PROTOCOL_ERROR = 1002
"""Bad WebSocket framing (autobahn closes with it before ``onMessage``)."""
CLOSE_UNSUPPORTED_DATA = 1003
"""A binary frame on the text-only WAMP v1 protocol."""
CLOSE_INVALID_PAYLOAD = 1007
"""What the client sent breaks WAMP: not JSON, not UTF-8, too deep (a ``ProtocolError``)."""
CLOSE_POLICY_VIOLATION = 1008
"""A spent budget (``LimitExceeded``) or a refusal by a secured topic."""
CLOSE_MESSAGE_TOO_BIG = 1009
"""A message over ``server.max_message_size``, also when fragmented."""
CLOSE_INTERNAL_ERROR = 1011
"""The server failed (not the client's fault)."""
CLOSE_TOKEN_EXPIRED = 4001
"""The connection's token expired; the browser client asks its page for a new one."""

CLIENT_BROKE_PROTOCOL = frozenset(
    {CLOSE_UNSUPPORTED_DATA, CLOSE_INVALID_PAYLOAD, CLOSE_MESSAGE_TOO_BIG}
)
"""Codes that say the client's own frames broke the protocol (v2 answers ABORT)."""

CLOSE_CODES: dict[str, int] = {
    "messages_per_second": CLOSE_POLICY_VIOLATION,
    "calls_per_second": CLOSE_POLICY_VIOLATION,
    "pings_per_second": CLOSE_POLICY_VIOLATION,
    "frames_per_second": CLOSE_POLICY_VIOLATION,
    "max_prefixes": CLOSE_POLICY_VIOLATION,
    "max_prefix_bytes": CLOSE_POLICY_VIOLATION,
    "max_subscriptions": CLOSE_POLICY_VIOLATION,
    "max_pending_calls": CLOSE_POLICY_VIOLATION,
    "max_registrations": CLOSE_POLICY_VIOLATION,
    "max_queued_jobs": CLOSE_POLICY_VIOLATION,
    "json_max_depth": CLOSE_INVALID_PAYLOAD,
    "invalid_json": CLOSE_INVALID_PAYLOAD,
    "invalid_utf8": CLOSE_INVALID_PAYLOAD,
    "max_message_size": CLOSE_MESSAGE_TOO_BIG,
    "binary_on_text_protocol": CLOSE_UNSUPPORTED_DATA,
}
"""The close code for each reason a client is cut off; ``docs/security.md`` explains each."""

LIBRARY_CLOSE_REASONS: dict[int, str] = {
    CLOSE_PROTOCOL_ERROR: "protocol_error",
    CLOSE_INVALID_PAYLOAD: "invalid_utf8",
    CLOSE_MESSAGE_TOO_BIG: "max_message_size",
}
"""The reason counted when the WebSocket library itself closes a client with a code (its frame
checks run before ``onMessage``)."""
