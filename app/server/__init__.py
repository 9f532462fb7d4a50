"""The WAMP v1 + v2 WebSocket server: what users subclass and what the container builds."""

from app.server.broker import Broker
from app.server.connection import WampConnection
from app.server.handlers import PushableTopic, SecuredTopic, TopicHandler
from app.server.manager import TopicManager
from app.server.rpc import RpcHandler
from app.server.server import WampServer
from app.server.session import KeywordArguments, Session, WireFormat
from app.server.timers import PeriodicTimers
from app.server.topic import Topic
from app.server.wamp1 import Wamp1Session
from app.server.wamp2 import Wamp2Session

__all__ = [
    "Broker",
    "KeywordArguments",
    "PeriodicTimers",
    "PushableTopic",
    "RpcHandler",
    "SecuredTopic",
    "Session",
    "Topic",
    "TopicHandler",
    "TopicManager",
    "Wamp1Session",
    "Wamp2Session",
    "WampConnection",
    "WampServer",
    "WireFormat",
]
