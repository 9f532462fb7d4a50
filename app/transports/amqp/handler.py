"""The AMQP server push handler: a queue or stream receiver, as ``queue_mode`` says."""

from __future__ import annotations

import os
import socket
import uuid
from typing import TYPE_CHECKING

from gos_web_socket.app.transports.amqp.receiver import AmqpReceiver
from gos_web_socket.app.transports.amqp.stream import AmqpStreamReceiver
from gos_web_socket.app.transports.canary import Canary
from gos_web_socket.app.transports.handler import ServerPushHandler
from gos_web_socket.settings.models import AmqpSettings

if TYPE_CHECKING:
    from gos_web_socket.app.events import EventDispatcher
    from gos_web_socket.app.router import Router

__all__ = ["AmqpServerPushHandler", "default_node_id"]


def default_node_id() -> str:
    """Unique per process: host, pid and a random suffix (a restarted node gets a new queue)."""
    return f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}"


class AmqpServerPushHandler(ServerPushHandler):
    """Consumes the push queue (an ``AmqpReceiver``) and hands every message to its topic.

    Pushes reach topics in queue order. Acks wait until the server wrote the frames, and are
    batched (``multiple=True``, at most ``prefetch_count // 2`` per batch).
    """

    name = "amqp"

    def __init__(
        self,
        settings: AmqpSettings,
        router: Router,
        dispatcher: EventDispatcher,
        node_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.node_id = node_id or default_node_id()
        self.per_node = settings.queue_mode == "per_node"
        self.amqp: AmqpReceiver
        if settings.queue_mode == "stream":
            self.amqp = AmqpStreamReceiver(settings, self.node_id)
        else:
            name = settings.queue_name
            queue_name = f"{name}.{self.node_id}" if self.per_node else name
            self.amqp = AmqpReceiver(settings, queue_name, self.node_id, self.per_node)
        self.queue_name = self.amqp.queue_name
        super().__init__(router, dispatcher, self.amqp, dedup_window=settings.dedup_window)
        canary = settings.canary
        if canary.interval and (settings.queue_mode != "stream" or canary.stream):
            self.canary = Canary(
                self.node_id,
                self.amqp.send_marker,
                canary.interval,
                canary.timeout,
                self.deafened,
                consuming=lambda: self.is_consuming,
            )
