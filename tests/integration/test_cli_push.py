"""`gos-websocket server` and `gos-websocket push` as users run them, in separate processes."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator

import pytest

from tests.support.process import ROOT, ServerProcess, server_env
from tests.support.rabbitmq import RabbitMQNode


@pytest.fixture
async def server_process(rabbitmq: RabbitMQNode) -> AsyncIterator[ServerProcess]:
    server = await ServerProcess(server_env(rabbitmq)).start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.mark.parametrize("pusher", ["amqp", "zmq"])
async def test_cli_push_reaches_a_subscriber_of_a_running_server(
    server_process: ServerProcess, pusher: str
) -> None:
    """`push acme_topic -p room=42 -d '{"msg":"hi"}' --pusher X` arrives at a subscriber."""
    env = server_process.env
    client = await server_process.subscriber("acme/channel/42")
    try:
        push = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gos_web_socket.app", "push", "acme_topic", "-p", "room=42",
            "-d", f'{{"msg": "hi via {pusher}"}}', "--pusher", pusher,
            cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(push.communicate(), 30)
        assert push.returncode == 0, err.decode()
        assert f"pushed to acme_topic through {pusher}" in out.decode()
        assert await client.next_event("acme/channel/42", timeout=10) == {"msg": f"hi via {pusher}"}
    finally:
        await client.close()


async def test_sigterm_stops_the_server_with_exit_code_0(server_process: ServerProcess) -> None:
    """SIGTERM: clients get 1001 and the process exits 0 within a few seconds."""
    client = await server_process.connect()
    server_process.signal(signal.SIGTERM)
    assert await asyncio.wait_for(client.wait_closed(), 10) == 1001
    assert await server_process.wait(10) == 0
