"""The README's "Writing topics and RPC" and "Adding your own pusher, ..." blocks are excerpts
of this module, and tests/docs/test_readme.py runs it: a topic, an RPC handler, the line
transport of docs/transports.md and a listener added to our container.
"""

from __future__ import annotations

import time
from typing import Any

from dependency_injector import providers

from gos_web_socket import containers
from gos_web_socket.app.events import PUSH_FAIL
from gos_web_socket.app.exceptions import FirewallRejection, RpcError
from gos_web_socket.app.server import PushableTopic, RpcHandler, SecuredTopic
from gos_web_socket.app.transports.handler import ServerPushHandler
from tests.contract.line_transport import LinePusher, LineReceiver


class ChatTopic(PushableTopic, SecuredTopic):
    name = "acme.chat"  # routing.yaml: callback: "acme.chat"

    async def secure(
        self, connection, topic, request, payload=None, exclude=None, eligible=None, provider=None
    ):
        if connection is not None and connection.remote_address.startswith("10."):
            raise FirewallRejection("internal addresses only")  # CALLERROR 401, then close

    async def on_subscribe(self, connection, topic, request):
        topic.broadcast({"joined": connection.session_id})  # len(topic) counts them already

    async def on_publish(self, connection, topic, request, event, exclude, eligible):
        topic.broadcast(event, exclude=exclude, eligible=eligible)

    async def on_push(self, topic, request, data, provider):  # provider: "amqp", "zmq", ...
        topic.broadcast(data)  # framed once for all subscribers


class ClockRpc(RpcHandler):
    name = "acme.clock"  # route "acme/clock/{method}"; method "now" → now()

    async def now(self, connection, request, params):
        if params:
            raise RpcError("now takes no params", 400)  # CALLERROR
        return {"now": time.time()}  # CALLRESULT


FAILED: list[Any] = []


def on_fail(event: Any) -> None:
    """A push_fail listener: what could not be delivered."""
    FAILED.append(event)


def extend(container: containers.Container, port: int) -> None:
    """Add the line transport (on ``port``), ChatTopic, ClockRpc and on_fail to ``container``."""
    gws = container.gos_web_socket
    gws.pushers.add_kwargs(  # tag gos_web_socket.pusher, alias "lines"
        lines=providers.Singleton(LinePusher, router=gws.router, host="127.0.0.1", port=port),
    )
    gws.server_push_handler.collection.add_kwargs(  # tag gos_web_socket.push_handler
        lines=providers.Singleton(
            ServerPushHandler,
            router=gws.router,
            dispatcher=gws.event_dispatcher,
            receiver=providers.Factory(LineReceiver, host="127.0.0.1", port=port),
        ),
    )
    gws.topics.add_args(providers.Singleton(ChatTopic))  # registered under ChatTopic.name
    gws.rpcs.add_args(providers.Singleton(ClockRpc))
    gws.event_listeners.add_args(providers.Object((PUSH_FAIL, on_fail, 10)))
