"""``server.dealer``: calls between clients connected to different nodes (several servers on
one RabbitMQ, docs/wamp2.md "Across nodes")."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from gos_web_socket.settings.nodes import Node


class DealerSettings(Node):
    across_nodes: bool = Field(
        default=False,
        description="relay calls between nodes over RabbitMQ (needs pushers.amqp.enabled)",
    )
    exchange_name: str = Field(default="gos_websocket_dealer", min_length=1)
    heartbeat: float = Field(
        default=2.0, gt=0, description="seconds between a node's announcements of its procedures"
    )
    node_timeout: float = Field(
        default=10.0, gt=0, description="seconds without an announcement before a node is gone"
    )
    claim_window: float = Field(
        default=0.25, gt=0, description="seconds a REGISTER waits for another node's objection"
    )

    @model_validator(mode="after")
    def _timeout_after_heartbeats(self) -> Self:
        if self.node_timeout <= 2 * self.heartbeat:
            raise ValueError(
                f"node_timeout {self.node_timeout} must be more than twice heartbeat"
                f" {self.heartbeat} (a node would expire between two announcements)"
            )
        return self
