"""``presence:``: who is subscribed to a presence route's channels (docs/presence.md).

Routes opt in with ``presence: true`` in routing.yaml; this node says how join and leave
reach clients and how lifecycle events reach the backend. The per-connection budgets (query
rate, info size) are in ``server.limits``.
"""

from __future__ import annotations

from pydantic import Field

from gos_web_socket.settings.nodes import Node


class PresenceQueueSettings(Node):
    """Lifecycle events to an AMQP queue (at least once), on the ``pushers.amqp`` broker."""

    enabled: bool = Field(
        default=False, description="publish connected/disconnected/joined/left to ``queue``"
    )
    queue: str = Field(
        default="gos_websocket_presence",
        min_length=1,
        description="durable queue the backend consumes (gos_web_socket.app.presence.consumer)",
    )
    outbox_size: int = Field(
        default=100_000,
        ge=1,
        description="events kept while the broker is away; beyond: the oldest are dropped, logged",
    )


class PresenceNodesSettings(Node):
    """Presence between nodes over RabbitMQ (the ``pushers.amqp`` broker): every server process
    is a node; changes and heartbeats go through one fanout exchange."""

    enabled: bool = Field(default=False, description="share presence with the other nodes")
    exchange: str = Field(
        default="gos_websocket_presence", min_length=1, description="the fanout exchange"
    )


class PresenceSettings(Node):
    """How presence events are debounced, leased and delivered."""

    window: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="seconds join/leave to clients are gathered into one diff per channel",
    )
    lease: float = Field(
        default=10.0,
        gt=0,
        le=15,
        description="seconds without a heartbeat after which a node's members are gone",
    )
    queue: PresenceQueueSettings = Field(default_factory=PresenceQueueSettings)
    nodes: PresenceNodesSettings = Field(default_factory=PresenceNodesSettings)
