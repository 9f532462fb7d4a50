"""The WAMP v1 WebSocket server: what users subclass and what the container builds."""

from app.server.manager import TopicManager
from app.server.protocol import WampConnection
from app.server.rpc import RpcHandler
from app.server.server import WampServer
from app.server.timers import PeriodicTimers
from app.server.topic import PushableTopic, SecuredTopic, Topic, TopicHandler

__all__ = [
    "PeriodicTimers",
    "PushableTopic",
    "RpcHandler",
    "SecuredTopic",
    "Topic",
    "TopicHandler",
    "TopicManager",
    "WampConnection",
    "WampServer",
]
