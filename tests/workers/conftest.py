"""A real `gos-websocket server` with ``server.workers: 2``, its pushers and its ops port."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gos_web_socket.app.ops import http_get
from gos_web_socket.app.testing import WampTestClient
from gos_web_socket.app.transports.amqp.pusher import AmqpPusher
from gos_web_socket.app.transports.zmq.pusher import ZmqPusher
from gos_web_socket.containers import build_router
from gos_web_socket.settings.models import DEFAULT_ROUTING, AmqpSettings, ZmqSettings
from tests.support.process import ServerProcess, server_env, setting
from tests.support.rabbitmq import RabbitMQNode
from tests.support.waiting import settles

CHANNEL = "acme/channel/42"


async def health(server: ServerProcess) -> tuple[int, dict[str, Any]]:
    """The parent's aggregated /health."""
    status, body = await http_get("127.0.0.1", server.metrics_port, "/health", 5.0)
    return status, json.loads(body)


async def until_ready(server: ServerProcess, within: float = 30.0) -> dict[str, Any]:
    """Poll /health until every worker is ready; the body."""

    async def ready() -> dict[str, Any] | None:
        assert server.process is not None and server.process.returncode is None, server.output
        try:
            status, body = await health(server)
        except OSError:
            return None
        return body if status == 200 and body["status"] == "ready" else None

    body = await settles(ready, within=within, every=0.1, what=lambda: f"ready\n{server.output}")
    assert body is not None
    return body


async def spread_subscribers(
    server: ServerProcess, count: int, channel: str = CHANNEL
) -> list[WampTestClient]:
    """``count`` subscribed clients, with at least one on each worker (the kernel spreads
    connections by their address; a few more are added until every worker has some)."""
    clients = [await server.subscriber(channel) for _ in range(count)]
    for _ in range(20):
        _, body = await health(server)
        if all(w["server"]["connections"] > 0 for w in body["workers"].values()):
            return clients
        clients.append(await server.subscriber(channel))
    raise AssertionError(f"the connections did not spread over the workers: {body}")


def pushers(server: ServerProcess) -> tuple[ZmqPusher, AmqpPusher]:
    """A ZeroMQ and an AMQP pusher aimed at ``server`` (its environment's ports and names)."""
    env = server.env
    router = build_router([DEFAULT_ROUTING])
    zmq = ZmqPusher(ZmqSettings(port=int(setting(env, "PUSHERS__ZMQ__PORT"))), router)
    amqp = AmqpPusher(
        AmqpSettings(
            enabled=True,
            port=int(setting(env, "PUSHERS__AMQP__PORT")),
            login="guest",
            password="guest",  # type: ignore[arg-type]
            queue_name=setting(env, "PUSHERS__AMQP__QUEUE_NAME"),
            exchange_name=setting(env, "PUSHERS__AMQP__EXCHANGE_NAME"),
            dead_letter_exchange=setting(env, "PUSHERS__AMQP__DEAD_LETTER_EXCHANGE"),
            dead_letter_queue=setting(env, "PUSHERS__AMQP__DEAD_LETTER_QUEUE"),
            queue_mode="per_node",
            push_timeout=10,
        ),
        router,
    )
    return zmq, amqp


def workers_env(rabbitmq: RabbitMQNode, **settings: Any) -> dict[str, str]:
    """Two workers, AMQP with a queue per worker."""
    return server_env(rabbitmq, SERVER__WORKERS=2, PUSHERS__AMQP__QUEUE_MODE="per_node", **settings)


@pytest.fixture
async def workers(rabbitmq: RabbitMQNode) -> AsyncIterator[ServerProcess]:
    server = await ServerProcess(workers_env(rabbitmq)).start()
    try:
        await until_ready(server)
        yield server
    finally:
        await server.stop()
