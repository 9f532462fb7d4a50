"""The server process's lifecycle as production meets it: taken ports, signals, kills, late brokers.

Each test runs `gos-websocket server` as a real process against the run's private RabbitMQ and
checks what users see: exit codes, one error line, and that no confirmed push is lost.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from collections import Counter
from collections.abc import AsyncIterator, Iterable

import pytest

from gos_web_socket.app.router import Router, load_routes
from gos_web_socket.app.testing import WampTestClient
from gos_web_socket.app.transports.amqp.pusher import AmqpPusher
from gos_web_socket.settings.models import DEFAULT_ROUTING, AmqpSettings
from tests.streams.nodes import health, healthy
from tests.support.process import ServerProcess, port_is_free, server_env, setting
from tests.support.rabbitmq import RabbitMQNode
from tests.support.waiting import eventually

ROOM = "lifecycle"
CHANNEL = f"acme/channel/{ROOM}"


def pusher_for(env: dict[str, str], rabbitmq: RabbitMQNode) -> AmqpPusher:
    """An AMQP pusher in the test process, on the same exchange as the server of ``env``."""
    settings = AmqpSettings(
        enabled=True,
        port=rabbitmq.port,
        login="guest",
        password="guest",
        queue_name=setting(env, "PUSHERS__AMQP__QUEUE_NAME"),
        exchange_name=setting(env, "PUSHERS__AMQP__EXCHANGE_NAME"),
        dead_letter_exchange=setting(env, "PUSHERS__AMQP__DEAD_LETTER_EXCHANGE"),
        dead_letter_queue=setting(env, "PUSHERS__AMQP__DEAD_LETTER_QUEUE"),
        push_timeout=60,
    )
    return AmqpPusher(settings, Router(load_routes(DEFAULT_ROUTING)))


async def push_all(pusher: AmqpPusher, numbers: Iterable[int], workers: int = 8) -> None:
    """Push ``{"n": n}`` for every number, ``workers`` confirmed pushes at a time."""
    queue = list(numbers)

    async def work() -> None:
        while queue:
            await pusher.push({"n": queue.pop(0)}, "acme_topic", {"room": ROOM})

    await asyncio.gather(*(work() for _ in range(workers)))


def numbers(client: WampTestClient) -> list[int]:
    return [payload["n"] for topic, payload in client.events if topic == CHANNEL]


@pytest.fixture
async def processes() -> AsyncIterator[list[ServerProcess]]:
    """Server processes a test starts; any still running at the end is stopped."""
    started: list[ServerProcess] = []
    yield started
    for process in started:
        await process.stop()


async def start(processes: list[ServerProcess], env: dict[str, str]) -> ServerProcess:
    process = await ServerProcess(env).start()
    processes.append(process)
    return process


async def restart_with_subscriber(
    processes: list[ServerProcess], env: dict[str, str], rabbitmq: RabbitMQNode
) -> WampTestClient:
    """A new server whose subscriber is in place before the backlog drains: the broker is
    paused while the server starts and the client subscribes (the handler waits for it)."""
    rabbitmq.stop_app()
    try:
        server = await start(processes, env)
        client = await server.subscriber(CHANNEL)
    finally:
        rabbitmq.start_app()
    return client


async def rest_after_a_restart(
    processes: list[ServerProcess],
    env: dict[str, str],
    rabbitmq: RabbitMQNode,
    first: WampTestClient,
    total: int,
) -> int:
    """Restart the server; every one of ``total`` pushes must reach the first subscriber (before
    the stop) or the new one. Returns how many arrived twice."""
    before = numbers(first)
    assert len(before) < total, "the stop came after every push: nothing was tested"
    second = await restart_with_subscriber(processes, env, rabbitmq)
    everything = set(range(total))
    await eventually(
        lambda: set(before) | set(numbers(second)) >= everything, 60, "every push", every=0.02
    )
    received = Counter(before + numbers(second))
    assert set(received) == everything
    return sum(count - 1 for count in received.values())


@pytest.mark.parametrize(
    ("variable", "name"),
    [
        ("SERVER__METRICS__PORT", "server.metrics"),
        ("SERVER__HTTP__PORT", "server.http"),
        ("PUSHERS__ZMQ__PORT", "pushers.zmq"),
        ("SERVER__PORT", "server.port"),
    ],
)
async def test_a_taken_port_stops_start_up_with_one_line(
    processes: list[ServerProcess], variable: str, name: str
) -> None:
    """A listener whose port is taken: exit 1 and one error line naming setting and address."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = server_env(**{variable: port})
        process = await start(processes, env)
        code = await process.wait(30)
    output = process.output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert code == 1, output
    key = name if name.endswith(".port") else f"{name}.port"
    hint = "GOS_WEB_SOCKET__" + key.upper().replace(".", "__") + "=..."
    hint += " or -p PORT" if name == "server.port" else ""
    assert errors == [
        f"error: {name}: cannot listen on 127.0.0.1:{port}: Address already in use "
        f"(move it with {hint})"
    ]
    assert "Traceback" not in output


async def test_a_second_instance_learns_every_taken_port_at_once(
    processes: list[ServerProcess],
) -> None:
    """Issue 30 item 6: all four listener ports taken: exit 1, one line for each, in one go."""
    taken = [socket.socket() for _ in range(4)]
    try:
        for sock in taken:
            sock.bind(("127.0.0.1", 0))
            sock.listen()
        ports = [sock.getsockname()[1] for sock in taken]
        names = [
            "SERVER__PORT",
            "SERVER__HTTP__PORT",
            "SERVER__METRICS__PORT",
            "PUSHERS__ZMQ__PORT",
        ]
        process = await start(processes, server_env(**dict(zip(names, ports, strict=True))))
        code = await process.wait(30)
    finally:
        for sock in taken:
            sock.close()
    errors = [line for line in process.output.splitlines() if line.startswith("error:")]
    assert code == 1, process.output
    assert [line.split(":")[1].strip() for line in errors] == [
        "server.port", "server.http", "server.metrics", "pushers.zmq"
    ]  # fmt: skip
    for line, name in zip(errors, names, strict=True):
        assert f"GOS_WEB_SOCKET__{name}=..." in line


async def test_sigterm_during_pushes_exits_0_and_every_push_arrives(
    rabbitmq: RabbitMQNode, processes: list[ServerProcess]
) -> None:
    """SIGTERM in the middle of 2,000 pushes: exit 0, the metrics port is free, and every push
    reaches the subscriber, before the stop or after a restart."""
    env = server_env(rabbitmq)
    server = await start(processes, env)
    first = await server.subscriber(CHANNEL)
    pusher = pusher_for(env, rabbitmq)
    try:
        pushing = asyncio.create_task(push_all(pusher, range(2000)))
        await eventually(
            lambda: len(first.events) >= 300, 30, "300 pushes before the stop", every=0.02
        )
        server.signal(signal.SIGTERM)
        assert await server.wait(15) == 0, server.output
        assert port_is_free(server.metrics_port)
        assert await first.wait_closed() == 1001
        await pushing
    finally:
        await pusher.close()
    duplicates = await rest_after_a_restart(processes, env, rabbitmq, first, 2000)
    assert duplicates <= 0.05 * 2000, f"{duplicates} duplicates"


async def test_sigkill_while_draining_a_backlog_loses_no_confirmed_push(
    rabbitmq: RabbitMQNode, processes: list[ServerProcess]
) -> None:
    """SIGKILL while the handler drains 6,000 waiting pushes: each confirmed push reached the
    subscriber before the kill or is delivered after the restart (duplicates counted)."""
    env = server_env(rabbitmq, PUSHERS__AMQP__PREFETCH_COUNT=20)
    pusher = pusher_for(env, rabbitmq)
    try:
        await push_all(pusher, range(6000), workers=16)  # the shared queue holds them
    finally:
        await pusher.close()
    first = await restart_with_subscriber(processes, env, rabbitmq)
    await eventually(
        lambda: len(first.events) >= 1500, 60, "1,500 pushes before the kill", every=0.02
    )
    processes[-1].signal(signal.SIGKILL)
    await processes[-1].wait(10)
    await first.wait_closed(10)
    duplicates = await rest_after_a_restart(processes, env, rabbitmq, first, 6000)
    # Redelivered: at most what was in flight (prefetched, unacked) when the kill came.
    assert duplicates <= 20 + 20, f"{duplicates} duplicates"


async def test_a_late_broker_is_consumed_without_a_restart(
    rabbitmq: RabbitMQNode, processes: list[ServerProcess]
) -> None:
    """Broker down at start, up 20 s later: /health 503 before, 200 within 10 s after, and a
    push is delivered with no restart."""
    env = server_env(rabbitmq)
    rabbitmq.stop_app()
    try:
        server = await start(processes, env)
        client = await server.subscriber(CHANNEL)
        loop = asyncio.get_running_loop()
        down_until = loop.time() + 20
        while loop.time() < down_until:
            assert await health(server) == 503
            await asyncio.sleep(1)
    finally:
        rabbitmq.start_app()
    await healthy(server, 10, 0.1)
    pusher = pusher_for(env, rabbitmq)
    try:
        await pusher.push({"n": 1}, "acme_topic", {"room": ROOM})
    finally:
        await pusher.close()
    assert await client.next_event(CHANNEL, timeout=10) == {"n": 1}
    assert server.process is not None and server.process.returncode is None
