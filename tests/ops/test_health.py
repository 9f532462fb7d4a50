"""GET /health and `gos-websocket health` against a real server and a broker that goes away."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gos_web_socket.app.ops import check_health
from gos_web_socket.app.testing import WampTestClient
from tests.ops.conftest import amqp_settings, http_get, ops_stack, scrape
from tests.support.rabbitmq import RabbitMQNode, free_port
from tests.support.waiting import settles

ROOT = Path(__file__).resolve().parents[2]


async def health_command(*args: str) -> subprocess.CompletedProcess[str]:
    """`gos-websocket health ...` in a subprocess, off the loop that serves the server."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "gos_web_socket.app", "health", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def health(port: int) -> tuple[int, dict[str, Any]]:
    status, text = await http_get(port, "/health")
    return status, json.loads(text)


async def test_health_follows_the_broker(rabbitmq: RabbitMQNode) -> None:
    """Ready with the broker up, 503 naming the AMQP handler while it is stopped, ready again."""
    async with ops_stack(amqp_settings(rabbitmq)) as stack:
        port = stack.ops.port
        status, body = await health(port)
        assert (status, body["status"], body["failing"]) == (200, "ready", [])
        assert body["push_handlers"] == {"amqp": {"transport": "amqp", "consuming": True}}
        ok = await health_command("-a", "127.0.0.1", "-p", str(port))
        assert ok.returncode == 0, ok.stderr
        assert json.loads(ok.stdout)["status"] == "ready"

        await asyncio.to_thread(rabbitmq.stop_app)
        try:

            async def not_ready() -> dict[str, Any] | None:
                status, body = await health(port)
                return body if status == 503 else None

            body = await settles(not_ready, within=20)
            assert body["failing"] == ["push_handler amqp: not consuming"]
            assert body["server"]["accepting"] is True
            down = await health_command("-p", str(port))
            assert down.returncode == 1
            assert json.loads(down.stdout)["status"] == "not ready"
        finally:
            await asyncio.to_thread(rabbitmq.start_app)

        async def ready() -> bool:
            return (await health(port))[0] == 200

        await settles(ready, within=30)
        samples = await scrape(port)
        assert (
            samples['gos_websocket_push_handler_reconnects_total{handler="amqp",transport="amqp"}']
            >= 1
        )


async def test_health_is_not_ready_once_the_server_stops() -> None:
    """A stopped server no longer accepts connections, and health says so."""
    async with ops_stack() as stack:
        port = stack.ops.port
        assert (await health(port))[0] == 200
        await stack.server.stop()
        status, body = await health(port)
        assert status == 503
        assert body["failing"] == ["server: not accepting connections"]


async def test_health_command_fails_when_nothing_answers() -> None:
    """Exit 1 and one line on stderr when no server listens on the address."""
    result = await health_command("-p", str(free_port()))
    assert result.returncode == 1
    assert result.stderr.startswith("not healthy: no server answering at 127.0.0.1:")
    assert "Traceback" not in result.stderr


def test_check_health_raises_oserror_when_nothing_answers() -> None:
    """The client reports a missing server as OSError, which the command turns into exit 1."""
    with pytest.raises(OSError):
        check_health("127.0.0.1", free_port(), timeout=2)


async def test_health_is_answered_on_the_websocket_port_too() -> None:
    """A plain GET /health (no Upgrade) on the WebSocket port answers as the ops port does,
    and WebSocket clients on that port are unaffected."""
    async with ops_stack() as stack:
        ws_port = stack.server.port
        status, body = await health(ws_port)
        assert (status, body) == await health(stack.ops.port)
        assert (status, body["status"]) == (200, "ready")
        result = await health_command("-p", str(ws_port))
        assert result.returncode == 0, result.stderr
        client = await WampTestClient.connect(stack.ws_url)
        assert client.is_open and client.session_id
        await client.close()
        await stack.server.stop()
        assert (await health(stack.ops.port))[0] == 503
