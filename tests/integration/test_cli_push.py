"""`python -m app server` and `python -m app push` as users run them, in separate processes."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.rabbitmq import RabbitMQNode, free_port
from tests.support.wamp_client import ConnectFailed, WampTestClient

ROOT = Path(__file__).resolve().parents[2]


def _env(rabbitmq: RabbitMQNode, ws_port: int, zmq_port: int) -> dict[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "GOS_WEB_SOCKET__SERVER__PORT": str(ws_port),
        "GOS_WEB_SOCKET__SERVER__HTTP__PORT": "0",
        "GOS_WEB_SOCKET__SERVER__METRICS__PORT": "0",
        "GOS_WEB_SOCKET__PUSHERS__ZMQ__PORT": str(zmq_port),
        "GOS_WEB_SOCKET__PUSHERS__AMQP__ENABLED": "true",
        "GOS_WEB_SOCKET__PUSHERS__AMQP__PORT": str(rabbitmq.port),
        "GOS_WEB_SOCKET__PUSHERS__AMQP__LOGIN": "guest",
        "GOS_WEB_SOCKET__PUSHERS__AMQP__PASSWORD": "guest",
        "GOS_WEB_SOCKET__PUSHERS__AMQP__QUEUE_NAME": f"cli_{suffix}",
        "GOS_WEB_SOCKET__PUSHERS__AMQP__EXCHANGE_NAME": f"cli_x_{suffix}",
        "GOS_WEB_SOCKET__PUSHERS__AMQP__DEAD_LETTER_EXCHANGE": f"cli_dlx_{suffix}",
        "GOS_WEB_SOCKET__PUSHERS__AMQP__DEAD_LETTER_QUEUE": f"cli_dead_{suffix}",
    }


async def _connect(url: str, deadline: float) -> WampTestClient:
    loop = asyncio.get_running_loop()
    while True:
        try:
            return await WampTestClient.connect(url)
        except (ConnectFailed, OSError):
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.1)


@pytest.fixture
async def server_process(
    rabbitmq: RabbitMQNode,
) -> AsyncIterator[tuple[dict[str, str], int, asyncio.subprocess.Process]]:
    ws_port, zmq_port = free_port(), free_port()
    env = _env(rabbitmq, ws_port, zmq_port)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", "server", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        yield env, ws_port, process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 15)


@pytest.mark.parametrize("pusher", ["amqp", "zmq"])
async def test_cli_push_reaches_a_subscriber_of_a_running_server(
    server_process: tuple[dict[str, str], int, asyncio.subprocess.Process], pusher: str
) -> None:
    """`push acme_topic -p room=42 -d '{"msg":"hi"}' --pusher X` arrives at a subscriber."""
    env, ws_port, _ = server_process
    loop = asyncio.get_running_loop()
    client = await _connect(f"ws://127.0.0.1:{ws_port}/", loop.time() + 20)
    try:
        client.subscribe("acme/channel/42")
        await client.call("acme/rpc/sum", 1)  # a round trip: the SUBSCRIBE is processed
        push = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "app", "push", "acme_topic", "-p", "room=42",
            "-d", f'{{"msg": "hi via {pusher}"}}', "--pusher", pusher,
            cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(push.communicate(), 30)
        assert push.returncode == 0, err.decode()
        assert f"pushed to acme_topic through {pusher}" in out.decode()
        assert await client.next_event("acme/channel/42", timeout=10) == {"msg": f"hi via {pusher}"}
    finally:
        await client.close()


async def test_sigterm_stops_the_server_with_exit_code_0(
    server_process: tuple[dict[str, str], int, asyncio.subprocess.Process],
) -> None:
    """SIGTERM: clients get 1001 and the process exits 0 within a few seconds."""
    _, ws_port, process = server_process
    loop = asyncio.get_running_loop()
    client = await _connect(f"ws://127.0.0.1:{ws_port}/", loop.time() + 20)
    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(client.wait_closed(), 10) == 1001
    assert await asyncio.wait_for(process.wait(), 10) == 0
