"""The WAMP v1 + v2 WebSocket server: what users subclass and what the container builds."""

from gos_web_socket.app.server.broker import Broker
from gos_web_socket.app.server.connection import WampConnection
from gos_web_socket.app.server.handlers import PushableTopic, SecuredTopic, TopicHandler
from gos_web_socket.app.server.manager import TopicManager
from gos_web_socket.app.server.rpc import RpcHandler
from gos_web_socket.app.server.server import WampServer
from gos_web_socket.app.server.session import KeywordArguments, Session, WireFormat
from gos_web_socket.app.server.timers import PeriodicTimers
from gos_web_socket.app.server.topic import Topic
from gos_web_socket.app.server.wamp1 import Wamp1Session
from gos_web_socket.app.server.wamp2.session import Wamp2Session

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
