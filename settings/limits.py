"""``server.limits``: the per-connection budgets against hostile clients (docs/security.md)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from gos_web_socket.settings.nodes import Node


class LimitsSettings(Node):
    """Per-connection budgets against hostile clients (docs/security.md: each default, why,
    and the close code a client gets at the limit)."""

    messages_per_second: float = Field(
        default=100.0,
        gt=0,
        description="sustained inbound WAMP messages per second; over: close 1008",
    )
    messages_burst: int = Field(
        default=200, ge=1, description="messages a client may send at once (a page subscribing)"
    )
    calls_per_second: float = Field(
        default=1000.0,
        gt=0,
        description="answered dealer round trips (RESULT, final YIELD or ERROR) per second; "
        "over: close 1008",
    )
    calls_burst: int = Field(
        default=1000, ge=1, description="answered dealer round trips a client may make at once"
    )
    pings_per_second: float = Field(
        default=1.0, gt=0, description="sustained pings; over: close 1008"
    )
    pings_burst: int = Field(
        default=16, ge=1, description="pings a client may send at once (a test suite sends 10)"
    )
    frames_per_second: float = Field(
        default=200.0,
        gt=0,
        description="sustained inbound frames (fragments and control frames count); over: 1008",
    )
    frames_burst: int = Field(
        default=200, ge=1, description="frames a client may send at once (>= messages_burst)"
    )
    frames_per_turn: int = Field(
        default=16, ge=1, description="frames of one client parsed per event-loop turn (fairness)"
    )
    read_bytes_per_turn: int = Field(
        default=65_536,
        ge=1024,
        description="bytes of one client parsed per event-loop turn (a larger frame still whole)",
    )
    max_prefixes: int = Field(
        default=64, ge=0, description="WAMP v1 PREFIX entries; over: close 1008"
    )
    max_prefix_bytes: int = Field(
        default=16_384, ge=0, description="bytes of all PREFIX entries together; over: close 1008"
    )
    max_subscriptions: int = Field(
        default=256, ge=1, description="topics one client may subscribe to; over: close 1008"
    )
    max_pending_calls: int = Field(
        default=16, ge=1, description="RPC calls of one client not yet answered; over: close 1008"
    )
    max_registrations: int = Field(
        default=64, ge=0, description="procedures one WAMP v2 client may register; over: close 1008"
    )
    max_pending_invocations: int = Field(
        default=64,
        ge=1,
        description="calls one callee serves at once; over: the caller gets wamp.error.unavailable",
    )
    max_progressive_results: int = Field(
        default=10_000,
        ge=0,
        description="progressive results of one call; over: the call ends wamp.error.canceled",
    )
    call_timeout: float = Field(
        default=60.0,
        gt=0,
        description="seconds a client procedure may take (between results); then error timeout",
    )
    max_queued_jobs: int = Field(
        default=256,
        ge=1,
        description="messages of one client waiting for its worker; over: close 1008",
    )
    json_max_depth: int = Field(
        default=64, ge=2, le=500, description="nesting of a client's JSON frame; deeper: close 1007"
    )
    handshake_max_bytes: int = Field(
        default=16_384,
        ge=1024,
        description="bytes of the HTTP upgrade request head; over: HTTP 431",
    )
    handshake_timeout: float = Field(
        default=5.0, gt=0, description="seconds from TCP accept to a finished handshake; then: drop"
    )
    handshakes_in_progress: int = Field(
        default=2048,
        ge=1,
        description="opening handshakes a process works on at once; later ones wait, unread",
    )
    handshake_lag: float = Field(
        default=0.04,
        gt=0,
        description="seconds the event loop may run late before fewer handshakes are admitted "
        "at once (pushes go first)",
    )
    handshakes_per_turn: int = Field(
        default=16,
        ge=1,
        description="opening handshakes worked on per event-loop turn; the rest of a mass "
        "reconnect's requests wait for the next turns (pushes go between)",
    )
    messages_per_turn: int = Field(
        default=8, ge=1, description="messages of one client handled per event-loop turn (fairness)"
    )
    departures_per_turn: int = Field(
        default=64,
        ge=1,
        description="gone connections leaving their topics per event-loop turn (a mass drop)",
    )
    zmq_max_message_size: int = Field(
        default=1_048_576,
        ge=128,
        description="bytes of one ZeroMQ push frame: the pusher refuses, the server drops beyond",
    )

    presence_queries_per_second: float = Field(
        default=2.0,
        gt=0,
        description="gos/presence calls one client may make per second; over: error 429",
    )
    presence_queries_burst: int = Field(
        default=10, ge=1, description="gos/presence calls one client may make at once"
    )
    presence_info_bytes: int = Field(
        default=1024,
        ge=0,
        le=65_536,
        description="bytes of a user's info shown in presence (JSON); larger: replaced by {}",
    )

    @model_validator(mode="after")
    def _frames_cover_messages(self) -> Self:
        """Every message is at least one frame: fewer frames than messages would close a page
        for a burst its message budget allows."""
        if self.frames_burst < self.messages_burst:
            message = (
                f"frames_burst ({self.frames_burst}) must be at least messages_burst "
                f"({self.messages_burst}): every message is at least one frame"
            )
            raise ValueError(message)
        return self
