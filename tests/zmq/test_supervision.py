"""A ZeroMQ receive loop that fails is restarted by the server's supervisor and delivers again."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import zmq
import zmq.asyncio

from gos_web_socket.app.demo import AcmeTopic
from gos_web_socket.app.events import EventDispatcher
from gos_web_socket.app.exceptions import ListenError
from gos_web_socket.app.metrics import ServerMetrics
from gos_web_socket.app.router import Router
from gos_web_socket.app.server import WampServer
from gos_web_socket.app.testing import WampTestClient
from gos_web_socket.app.transports.zmq.handler import ZmqServerPushHandler
from gos_web_socket.app.transports.zmq.pusher import ZmqPusher
from gos_web_socket.app.transports.zmq.receiver import ZmqReceiver
from gos_web_socket.app.transports.zmq.wire import endpoint
from gos_web_socket.settings.models import ZmqSettings
from tests.support.server import make_server, url_of
from tests.support.waiting import eventually

CHANNEL = "acme/channel/lobby"


async def test_failing_socket_recv_is_restarted(
    demo_server: WampServer, zmq_settings: ZmqSettings, router: Router
) -> None:
    """The PULL socket's recv fails once: the supervisor restarts the loop, a push reaches the
    subscriber again, and /metrics shows restarts 1."""
    handler = demo_server.push_handlers["zmq"]
    receiver = handler.receiver
    assert isinstance(receiver, ZmqReceiver) and receiver._socket is not None
    sock = receiver._socket
    recv = sock.recv_multipart
    failed = asyncio.Event()

    def failing_recv(*args: Any, **kwargs: Any) -> asyncio.Future[list[bytes]]:
        future: asyncio.Future[list[bytes]] = asyncio.get_running_loop().create_future()
        if failed.is_set():
            return recv(*args, **kwargs)  # type: ignore[return-value]
        failed.set()
        future.set_exception(zmq.ZMQError(zmq.EFSM, "injected recv failure"))
        return future

    sock.recv_multipart = failing_recv  # type: ignore[method-assign]
    client = await WampTestClient.connect(url_of(demo_server))
    client.subscribe(CHANNEL)
    await client.call("acme/rpc/echo", "subscribed")
    pusher = ZmqPusher(zmq_settings, router)
    try:
        await pusher.push({"msg": "before"}, "acme_topic", {"room": "lobby"})  # the pending recv
        assert await client.next_event(CHANNEL) == {"msg": "before"}
        await asyncio.wait_for(failed.wait(), 5)
        await eventually(lambda: handler.is_consuming and handler.stats.restarts == 1, 10)
        for _ in range(3):  # at-most-once: a push into the old connection may be lost
            await pusher.push({"msg": "after"}, "acme_topic", {"room": "lobby"})
            try:
                assert await client.next_event(CHANNEL, timeout=2) == {"msg": "after"}
                break
            except TimeoutError:
                continue
        else:
            raise AssertionError("no push reached the subscriber after the restart")
        assert handler.stats.restarts == 1
        assert "injected recv failure" in demo_server.supervisor.states["zmq"].last_error
        metrics = ServerMetrics(demo_server)
        try:
            text = metrics.render().decode()
        finally:
            metrics.detach()
        assert 'push_handler_restarts_total{handler="zmq",transport="zmq"} 1.0' in text
    finally:
        await pusher.close()
        await client.close()


async def test_a_taken_port_stops_server_start_up(
    zmq_settings: ZmqSettings, router: Router, dispatcher: EventDispatcher
) -> None:
    """The ZeroMQ port is taken: WampServer.start() raises ListenError naming pushers.zmq
    (retrying cannot help), instead of retrying for ever."""
    squatter = zmq.asyncio.Context.instance().socket(zmq.PULL)
    squatter.bind(endpoint(zmq_settings))
    try:
        handler = ZmqServerPushHandler(zmq_settings, router, dispatcher)
        server = make_server(topics=[AcmeTopic()], push_handlers={"zmq": handler})
        with pytest.raises(ListenError) as error:
            await server.start(port=0)
        await server.stop()
    finally:
        squatter.close(linger=0)
    assert str(error.value) == (
        f"pushers.zmq: cannot listen on 127.0.0.1:{zmq_settings.port}: Address already in use "
        "(move it with GOS_WEB_SOCKET__PUSHERS__ZMQ__PORT=...)"
    )
    assert not handler.is_consuming and server.supervisor.states["zmq"].status == "closed"
