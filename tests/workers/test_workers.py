"""`gos-websocket server` with `server.workers: 2`: one port, every push reaches every client."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
from pathlib import Path

from gos_web_socket.app.testing import WampTestClient
from gos_web_socket.app.transports.amqp.pusher import AmqpPusher
from gos_web_socket.app.transports.zmq.pusher import ZmqPusher
from tests.ops.conftest import scrape
from tests.support.process import ServerProcess, server_env
from tests.support.rabbitmq import RabbitMQNode
from tests.support.waiting import eventually
from tests.workers.conftest import CHANNEL, health, pushers, spread_subscribers, until_ready

PUSHES = 5


async def receive_all(
    clients: list[WampTestClient], count: int, zmq: ZmqPusher, amqp: AmqpPusher
) -> list[list[object]]:
    """``count`` events from each client; then one marker through each pusher, and nothing
    may come before the two markers (a push that arrived twice would)."""
    got = [[await c.next_event(CHANNEL, timeout=10) for _ in range(count)] for c in clients]
    markers = [{"marker": "zmq"}, {"marker": "amqp"}]
    await zmq.push(markers[0], "acme_topic", {"room": "42"})
    await amqp.push(markers[1], "acme_topic", {"room": "42"})
    for client in clients:
        after: list[object] = []
        while not all(marker in after for marker in markers):
            after.append(await client.next_event(CHANNEL, timeout=10))
        assert sorted(after, key=str) == sorted(markers, key=str), "a push arrived twice"
    return got


async def test_every_client_on_every_worker_gets_each_push_exactly_once(
    workers: ServerProcess,
) -> None:
    """Clients on both workers receive each ZeroMQ and each AMQP push once, in order."""
    clients = await spread_subscribers(workers, 12)
    zmq, amqp = pushers(workers)
    try:
        for n in range(PUSHES):
            await zmq.push({"via": "zmq", "n": n}, "acme_topic", {"room": "42"})
        for n in range(PUSHES):
            await amqp.push({"via": "amqp", "n": n}, "acme_topic", {"room": "42"})
        got = await receive_all(clients, 2 * PUSHES, zmq, amqp)
        expected = [{"via": v, "n": n} for v in ("zmq", "amqp") for n in range(PUSHES)]
        assert all(events == expected for events in got)
    finally:
        await zmq.close()
        await amqp.close()
        for client in clients:
            await client.close()


async def test_a_killed_worker_is_restarted_and_its_clients_reconnect(
    workers: ServerProcess,
) -> None:
    """SIGKILL of worker 1: its clients are cut, it comes back with a new pid, the clients
    reconnect and get pushes again; the restart is counted."""
    clients = await spread_subscribers(workers, 12)
    _, body = await health(workers)
    victim = body["workers"]["1"]["pid"]
    on_victim = body["workers"]["1"]["server"]["connections"]
    assert on_victim > 0
    os.kill(victim, signal.SIGKILL)
    await eventually(
        lambda: sum(not c.is_open for c in clients) >= on_victim,
        10,
        f"{on_victim} clients saw the kill",
        every=0.05,
    )
    cut = [c for c in clients if not c.is_open]
    body = await until_ready(workers)
    assert body["workers"]["1"]["pid"] not in (None, victim)
    samples = await scrape(workers.metrics_port)
    assert samples["gos_websocket_worker_restarts_total"] == 1
    alive = [c for c in clients if c.is_open]
    again = [await workers.subscriber(CHANNEL) for _ in cut]
    zmq, amqp = pushers(workers)
    try:
        await zmq.push({"after": "restart"}, "acme_topic", {"room": "42"})
        await amqp.push({"after": "restart"}, "acme_topic", {"room": "42"})
        got = await receive_all([*alive, *again], 2, zmq, amqp)
        assert all(events == [{"after": "restart"}] * 2 for events in got)
    finally:
        await zmq.close()
        await amqp.close()
        for client in [*alive, *again]:
            await client.close()


async def test_sigterm_stops_every_worker_and_exits_0(workers: ServerProcess) -> None:
    """SIGTERM to the parent: clients on both workers get 1001, every process exits, code 0."""
    clients = await spread_subscribers(workers, 8)
    _, body = await health(workers)
    pids = [w["pid"] for w in body["workers"].values()]
    workers.signal(signal.SIGTERM)
    codes = await asyncio.gather(*(c.wait_closed(timeout=15) for c in clients))
    assert set(codes) == {1001}
    assert await workers.wait(20) == 0
    assert [pid for pid in pids if not _gone(pid)] == []


async def test_ctrl_c_in_a_terminal_with_workers_auto_exits_0() -> None:
    """SIGINT to the whole process group (a terminal's Ctrl-C) with ``workers: auto``: exit 0."""
    server = await ServerProcess(server_env(SERVER__WORKERS="auto")).start(new_session=True)
    try:
        body = await until_ready(server)
        pids = [w["pid"] for w in body["workers"].values()]
        assert server.process is not None
        os.killpg(server.process.pid, signal.SIGINT)
        assert await server.wait(30) == 0, server.output
        assert [pid for pid in pids if not _gone(pid)] == []
    finally:
        await server.stop()


def _gone(pid: int) -> bool:
    """No such process, or only its zombie (waiting for whoever inherited it to reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1].startswith("Z")
    except FileNotFoundError:
        return True


async def test_health_and_metrics_cover_all_workers(workers: ServerProcess) -> None:
    """/metrics adds up both workers' connections; /health turns degraded (still 200) while one
    worker does not answer, and names it."""
    clients = await spread_subscribers(workers, 6)
    try:
        samples = await scrape(workers.metrics_port)
        assert samples["gos_websocket_connections"] == len(clients)
        assert samples["gos_websocket_workers"] == 2
        assert samples["gos_websocket_workers_ready"] == 2
        assert samples['gos_websocket_push_handler_consuming{handler="zmq",transport="zmq"}'] == 2
        status, body = await health(workers)
        assert (status, body["status"], body["server"]["connections"]) == (
            200,
            "ready",
            len(clients),
        )
        stopped = body["workers"]["0"]["pid"]
        os.kill(stopped, signal.SIGSTOP)  # alive, but answers nothing
        try:
            status, body = await health(workers)
            assert (status, body["status"]) == (200, "degraded")
            assert body["failing"] == ["worker 0: not running"]
        finally:
            os.kill(stopped, signal.SIGCONT)
    finally:
        for client in clients:
            await client.close()


async def test_shared_amqp_queue_with_workers_is_a_config_error(rabbitmq: RabbitMQNode) -> None:
    """workers 2 with queue_mode shared: one line naming key, value and what is allowed; exit 2."""
    server = await ServerProcess(server_env(rabbitmq, SERVER__WORKERS=2)).start()
    assert await server.wait(30) == 2
    assert (
        "config error: pushers.amqp.queue_mode: 'shared' is not allowed with server.workers 2"
        in server.output
    )
    assert "use per_node (a queue per worker) or stream" in server.output


async def test_one_worker_is_the_single_process_server_of_old() -> None:
    """workers 1: the process started serves itself (no parent, no fan-out)."""
    server = await ServerProcess(server_env(SERVER__WORKERS=1)).start()
    try:
        client = await server.connect()
        await client.close()
        assert server.process is not None
        assert f"(pid {server.process.pid})" in server.output
        assert "workers serving" not in server.output
    finally:
        await server.stop()


async def test_listen_backlog_and_event_loop_are_settings() -> None:
    """server.listen_backlog reaches listen() (ss shows it); event_loop uvloop runs on uvloop."""
    env = server_env(SERVER__LISTEN_BACKLOG=777, SERVER__EVENT_LOOP="uvloop")
    server = await ServerProcess(env).start()
    try:
        client = await server.connect()
        await client.close()
        port = server.ws_url.rsplit(":", 1)[1].strip("/")
        ss = await asyncio.create_subprocess_exec(
            "ss", "-ltnH", f"sport = :{port}", stdout=asyncio.subprocess.PIPE
        )
        out, _ = await ss.communicate()
        assert re.search(r"LISTEN\s+\d+\s+777\s", out.decode()), out.decode()
        assert "event loop: uvloop" in server.output
    finally:
        await server.stop()


async def test_bad_event_loop_is_one_config_line() -> None:
    """event_loop: trio stops start-up with one line naming key, value and the choices."""
    server = await ServerProcess(server_env(SERVER__EVENT_LOOP="trio")).start()
    assert await server.wait(30) == 2
    assert (
        "config error: server.event_loop: 'trio' is not allowed: "
        "Input should be 'auto', 'asyncio' or 'uvloop'" in server.output
    )


async def test_workers_stop_when_the_parent_is_killed(workers: ServerProcess) -> None:
    """SIGKILL of the parent (no chance to stop anyone): the workers notice and exit."""
    _, body = await health(workers)
    pids = [w["pid"] for w in body["workers"].values()]
    workers.signal(signal.SIGKILL)
    await workers.wait(10)
    await eventually(
        lambda: all(_gone(pid) for pid in pids), 20, "no worker outlived its parent", every=0.1
    )


async def test_a_taken_port_stops_the_start_up_with_one_line() -> None:
    """The WebSocket port held by another process: the first worker fails, the parent stops
    the others and exits 1 with the worker's one-line error."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        server = await ServerProcess(server_env(ws_port=port, SERVER__WORKERS=2)).start()
        assert await server.wait(60) == 1
    assert f"error: server.port: cannot listen on 127.0.0.1:{port}" in server.output
    assert "exited with 1 while starting" in server.output


async def test_in_stream_mode_each_worker_is_a_node_with_its_own_offset(
    rabbitmq: RabbitMQNode, tmp_path: Path
) -> None:
    """queue_mode stream with two workers: each worker reads the stream as a node of its own
    (offset files <node_name>-w0 and -w1), and every client gets each push once."""
    env = server_env(
        rabbitmq,
        SERVER__WORKERS=2,
        PUSHERS__AMQP__QUEUE_MODE="stream",
        PUSHERS__AMQP__STREAM__NODE_NAME="edge",
        PUSHERS__AMQP__STREAM__STATE_DIR=str(tmp_path),
    )
    server = await ServerProcess(env).start()
    clients: list[WampTestClient] = []
    try:
        await until_ready(server)
        clients = await spread_subscribers(server, 12)
        zmq, amqp = pushers(server)
        try:
            for n in range(PUSHES):
                await amqp.push({"via": "amqp", "n": n}, "acme_topic", {"room": "42"})
            got = await receive_all(clients, PUSHES, zmq, amqp)
        finally:
            await zmq.close()
            await amqp.close()
        assert all(events == [{"via": "amqp", "n": n} for n in range(PUSHES)] for events in got)
    finally:
        for client in clients:
            await client.close()
        await server.stop()
    names = sorted(name for name in os.listdir(tmp_path) if name.endswith(".json"))
    assert [name.split(".")[-2] for name in names] == ["edge-w0", "edge-w1"]
