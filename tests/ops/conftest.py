"""A real server with a real AMQP push handler and the ops listener, plus small HTTP helpers."""

from __future__ import annotations

import asyncio
import contextlib
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from gos_web_socket.app.demo import AcmeTopic
from gos_web_socket.app.ops import OpsService
from gos_web_socket.app.router import Router
from gos_web_socket.app.server import WampServer
from gos_web_socket.app.transports.amqp.handler import AmqpServerPushHandler
from gos_web_socket.app.transports.amqp.pusher import AmqpPusher
from gos_web_socket.settings.models import AmqpSettings
from tests.support.rabbitmq import RabbitMQNode
from tests.support.server import running, service


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
    """The container's runtime: demo topic, the metrics listener on a free port, and the AMQP
    push handler and pusher when ``amqp`` is given."""
    pushers = {"amqp": amqp} if amqp else {}
    metrics = {"enabled": True, "host": "127.0.0.1", "port": 0}
    async with running(topics=[AcmeTopic()], pushers=pushers, metrics=metrics) as container:
        server = service(container, "gos_web_socket.server")
        handler = server.push_handlers.get("amqp")
        pusher = service(container, "gos_web_socket.pusher_registry").get("amqp")
        ops = service(container, "gos_web_socket.ops")
        yield Stack(server, ops, server.router, handler, pusher)


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
