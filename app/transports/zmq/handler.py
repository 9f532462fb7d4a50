"""The ZeroMQ server push handler: the receiver that ``server.workers`` picks, and the canary."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gos_web_socket.app.transports.handler import ServerPushHandler
from gos_web_socket.app.transports.zmq.canary import ZmqMarkers
from gos_web_socket.app.transports.zmq.fanout import ZmqSubscriber
from gos_web_socket.app.transports.zmq.receiver import ZmqReceiver
from gos_web_socket.app.transports.zmq.wire import DEFAULT_MAX_MESSAGE_SIZE, endpoint

if TYPE_CHECKING:
    from gos_web_socket.app.events import EventDispatcher
    from gos_web_socket.app.router import Router
    from gos_web_socket.settings.models import ZmqSettings

__all__ = ["ZmqServerPushHandler"]


class ZmqServerPushHandler(ServerPushHandler):
    """A ``ZmqReceiver`` bound to ``protocol://host:port``; each frame is one push.

    A frame that cannot be decoded, routed or handled fires ``push_fail`` and is dropped;
    the handler goes on with the next one (there is nobody to reject it to).
    """

    name = "zmq"

    def __init__(
        self,
        settings: ZmqSettings,
        router: Router,
        dispatcher: EventDispatcher,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        fanout: str | None = None,
    ) -> None:
        """``max_message_size``: bytes of one frame (``server.limits.zmq_max_message_size``);
        ``fanout``: in a worker of ``server.workers``, the parent's ``ZmqFanout`` endpoint to
        subscribe to instead of binding the PULL endpoint itself."""
        self.settings = settings
        self.endpoint = endpoint(settings)
        receiver: ZmqReceiver = (
            ZmqReceiver(settings, max_message_size)
            if fanout is None
            else ZmqSubscriber(settings, fanout, max_message_size)
        )
        super().__init__(router, dispatcher, receiver, dedup_window=0)
        receiver.stats = self.stats  # oversize frames count as this handler's
        self.markers = ZmqMarkers(self.endpoint)
        self.canary = self.markers.canary(settings, self.deafened)

    async def close(self) -> None:
        await super().close()
        self.markers.close()
