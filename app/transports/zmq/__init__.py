"""The ZeroMQ transport: a PUSH pusher and a PULL server push handler (GOS 1.x's ZMQ pair), one
concern a module.

- ``wire``: what both ends agree on (the endpoint, the frame size limit, multipart frames);
- ``context``: the toolkit's one ZeroMQ context, every socket's opening and closing, and the
  bounded flush at interpreter exit;
- ``pusher``: ``ZmqPusher`` (bounded sends, refuses frames the server would drop);
- ``receiver``: ``ZmqReceiver`` (the PULL socket; counts and drops oversize frames);
- ``fanout``: ``server.workers``' fan-out, ``ZmqFanout`` in the parent and ``ZmqSubscriber`` in
  each worker;
- ``canary``: ``ZmqMarkers``, the canary's sender;
- ``handler``: ``ZmqServerPushHandler``, the receiver that ``server.workers`` picks.

Delivery is at-most-once: ZeroMQ has no acknowledgement. Pushers connect, the handler binds
(loopback by default), and every frame is one GOS envelope ``{"topic": ..., "data": ...}``.
No push is lost to a size limit in silence (docs/security.md). See docs/zmq_wamp.md.
"""

from gos_web_socket.app.transports.zmq.context import shared_context
from gos_web_socket.app.transports.zmq.fanout import ZmqFanout, ZmqSubscriber
from gos_web_socket.app.transports.zmq.handler import ZmqServerPushHandler
from gos_web_socket.app.transports.zmq.pusher import ZmqPusher
from gos_web_socket.app.transports.zmq.receiver import ZmqReceiver
from gos_web_socket.app.transports.zmq.wire import endpoint

__all__ = [
    "ZmqFanout",
    "ZmqPusher",
    "ZmqReceiver",
    "ZmqServerPushHandler",
    "ZmqSubscriber",
    "endpoint",
    "shared_context",
]
