"""Server processes in stream mode on the run's broker: one stream, a node name and dir each."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from gos_web_socket.app.router import Router, load_routes_from_mapping
from gos_web_socket.settings.models import AmqpSettings
from tests.ops.conftest import http_get
from tests.streams.recovery import ROUTES
from tests.support.process import ServerProcess, server_env, setting
from tests.support.rabbitmq import RabbitMQNode, free_port
from tests.support.waiting import settles


async def health(node: ServerProcess) -> int:
    """The node's /health status (200 once its push handler consumes), 0 when it is away."""
    try:
        status, _ = await http_get(node.metrics_port, "/health")
    except OSError:
        return 0
    return status


async def healthy(node: ServerProcess, within: float, every: float) -> None:
    """Wait until the node's /health says 200; a failure shows the node's output."""
    await settles(
        lambda: health(node),
        lambda status: status == 200,
        within,
        every,
        lambda: f"/health 200; the node's output:\n{node.output}",
    )


class Cluster:
    """Stream-mode nodes sharing one exchange and stream; routes with history (ROUTES)."""

    def __init__(self, rabbitmq: RabbitMQNode, tmp: Path, **settings: Any) -> None:
        routing = tmp / "routing.yaml"
        routing.write_text(yaml.safe_dump(ROUTES))
        self.tmp = tmp
        self.base = server_env(
            rabbitmq,
            PUSHERS__AMQP__QUEUE_MODE="stream",
            PUSHERS__AMQP__STREAM__PROBE_TIMEOUT="0.3",
            SERVER__ROUTER__RESOURCES=json.dumps([str(routing)]),
            **settings,
        )
        self.router = Router(load_routes_from_mapping(ROUTES))
        self.envs: dict[str, dict[str, str]] = {}
        self.nodes: list[ServerProcess] = []

    def env(self, name: str) -> dict[str, str]:
        """Node ``name``'s environment: the same every time (ports, offset file)."""
        if name not in self.envs:
            env = dict(self.base)
            for key in ("SERVER__PORT", "SERVER__METRICS__PORT", "PUSHERS__ZMQ__PORT"):
                env[f"GOS_WEB_SOCKET__{key}"] = str(free_port())
            env["GOS_WEB_SOCKET__PUSHERS__AMQP__STREAM__NODE_NAME"] = name
            env["GOS_WEB_SOCKET__PUSHERS__AMQP__STREAM__STATE_DIR"] = str(self.tmp / name)
            self.envs[name] = env
        return self.envs[name]

    async def start(self, name: str) -> ServerProcess:
        """Start node ``name`` and wait until it answers WAMP and its handler consumes."""
        node = await ServerProcess(self.env(name)).start()
        self.nodes.append(node)
        await (await node.connect()).close()
        await healthy(node, 12, 0.05)
        return node

    def amqp(self) -> AmqpSettings:
        """Pusher settings on the cluster's exchange and stream."""
        env = self.base

        def get(key: str) -> str:
            return setting(env, f"PUSHERS__AMQP__{key}")

        return AmqpSettings(
            enabled=True,
            host="127.0.0.1",
            port=int(get("PORT")),
            login="guest",
            password="guest",
            queue_name=get("QUEUE_NAME"),
            exchange_name=get("EXCHANGE_NAME"),
            dead_letter_exchange=get("DEAD_LETTER_EXCHANGE"),
            dead_letter_queue=get("DEAD_LETTER_QUEUE"),
            queue_mode="stream",
            push_timeout=15,
        )

    async def stop(self) -> None:
        for node in self.nodes:
            await node.stop()
