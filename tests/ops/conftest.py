"""A real server with a real AMQP push handler and the ops listener, plus small HTTP helpers."""

from __future__ import annotations

import asyncio
import contextlib
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from app.demo import AcmeTopic
from app.events import SERVER_LAUNCHED, EventDispatcher
from app.ops import OpsService
from app.registry import RpcRegistry, ServerPushHandlerRegistry, TopicRegistry
from app.router import Router, load_routes
from app.server import WampServer
from app.transports.amqp import AmqpPusher, AmqpServerPushHandler
from settings.models import DEFAULT_ROUTING, AmqpSettings, MetricsSettings, Settings
from tests.support.rabbitmq import RabbitMQNode


def amqp_settings(rabbitmq: RabbitMQNode) -> AmqpSettings:
    """Queue and exchanges of this test only, on the run's private broker."""
    return rabbitmq.amqp_settings(push_timeout=10, reconnect_interval=0.2)


@dataclass
class Stack:
    server: WampServer
    ops: OpsService
    router: Router
    handler: AmqpServerPushHandler | None
    pusher: AmqpPusher | None

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.server.port}/"


@contextlib.asynccontextmanager
async def ops_stack(amqp: AmqpSettings | None = None) -> AsyncIterator[Stack]:
    """Server (demo topic, optional AMQP handler and pusher) with ``OpsService`` on a free port."""
    router = Router(load_routes(DEFAULT_ROUTING))
    dispatcher = EventDispatcher()
    handler = AmqpServerPushHandler(amqp, router, dispatcher) if amqp else None
    pusher = AmqpPusher(amqp, router) if amqp else None
    handlers: Mapping[str, Any] = {"amqp": handler} if handler else {}
    pushers: Mapping[str, Any] = {"amqp": pusher} if pusher else {}
    server = WampServer(
        Settings(server={"host": "127.0.0.1"}),
        router,
        TopicRegistry({AcmeTopic.name: AcmeTopic()}),
        RpcRegistry({}),
        dispatcher,
        ServerPushHandlerRegistry(handlers),
    )
    ops = OpsService(MetricsSettings(host="127.0.0.1", port=0), pushers)
    dispatcher.add_listener(SERVER_LAUNCHED, ops.on_server_launched)
    await server.start(port=0)
    try:
        yield Stack(server, ops, router, handler, pusher)
    finally:
        if pusher is not None:
            await pusher.close()
        await server.stop()
        await ops.close()


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read().decode()


async def http_get(port: int, path: str) -> tuple[int, str]:
    """GET over a real socket, off the loop so the server on this loop can answer."""
    return await asyncio.to_thread(_get, port, path)


async def scrape(port: int) -> dict[str, float]:
    """``/metrics`` as ``{'name{label="v",...}': value}``, labels sorted."""
    status, text = await http_get(port, "/metrics")
    assert status == 200, text
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


async def poll(
    check: Any,
    timeout: float = 20.0,  # noqa: ASYNC109
    interval: float = 0.05,
) -> Any:
    """Await ``check()`` until it returns something truthy and return that; fail at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result or loop.time() > deadline:
            assert result, f"not true within {timeout} s"
            return result
        await asyncio.sleep(interval)
