"""``pushers.amqp.canary``: the marker push a node sends itself to prove it still hears."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from gos_web_socket.settings.nodes import Node


class CanarySettings(Node):
    """How often a push handler checks that a push sent now comes back to it (docs/canary.md).

    The default interval, 30 s, bounds a deaf node to about a minute (two intervals) where
    nothing else notices it at all (python-socketio #1581: 24 hours), at a cost of two small
    messages a minute per node. The timeout is generous because a marker queues behind the
    pushes ahead of it; a marker overdue while other pushes still arrive is not a deaf node.
    """

    interval: float = Field(
        default=30.0, ge=0, description="seconds between marker pushes; 0: the canary is off"
    )
    timeout: float = Field(default=10.0, gt=0, description="seconds a marker may take to come back")
    stream: bool = Field(
        default=False,
        description="also in queue_mode: stream (markers then take positions in the log)",
    )

    @model_validator(mode="after")
    def _timeout_within_interval(self) -> Self:
        if self.interval and self.timeout > self.interval:
            raise ValueError(
                f"canary.timeout {self.timeout} is over canary.interval {self.interval}; "
                "allowed: timeout <= interval"
            )
        return self
