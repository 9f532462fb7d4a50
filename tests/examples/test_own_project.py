"""Your own server: examples/own_project's tests, and `server --container` on bad input."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from dependency_injector import providers

from gos_web_socket import containers
from gos_web_socket.app.demo import AcmeRpc
from gos_web_socket.app.events import SERVER_LAUNCHED
from gos_web_socket.testing import (
    WampTestClient,
    make_container,
    memory_pusher,
    running,
    url_of,
    use_memory_pusher,
)
from tests.support.process import ServerProcess, server_env

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "own_project"


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_example_projects_own_tests_pass() -> None:
    """examples/own_project's suite, run from its own directory as its user would, passes."""
    result = _run(["-m", "pytest", "-q", "-p", "no:cacheprovider"], EXAMPLE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 passed" in result.stdout


def test_an_unimportable_container_is_one_line_and_exit_2() -> None:
    """--container naming a missing module ends with one config error line, exit 2."""
    result = _run(
        ["-m", "gos_web_socket.app", "server", "--container", "nowhere.realtime:Container"], ROOT
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "config error: server.container: cannot import 'nowhere.realtime'"
        " (ModuleNotFoundError: No module named 'nowhere')"
    ]


def test_a_non_container_is_one_line_and_exit_2() -> None:
    """--container naming something that is not a Container subclass is refused, exit 2."""
    result = _run(["-m", "gos_web_socket.app", "server", "--container", "json:loads"], ROOT)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "config error: server.container: 'json:loads' is not a subclass of containers.Container"
    ]


def test_routes_of_the_example_config_are_its_own() -> None:
    """`routes --config config.yaml`, run in the example project, lists its own routes only."""
    result = _run(["-m", "gos_web_socket.app", "routes", "--config", "config.yaml"], EXAMPLE)
    assert result.returncode == 0, result.stderr
    assert "chat_room" in result.stdout
    assert "acme_topic" not in result.stdout


async def test_the_demo_is_on_by_default() -> None:
    """Without server.demo the shipped acme.topic and acme.rpc are registered."""
    async with running(containers.Container) as container:
        gos = container.gos_web_socket
        assert "acme.topic" in gos.topic_registry()
        assert "acme.rpc" in gos.rpc_registry()


LAUNCHED: list[object] = []


class Realtime(containers.Container):
    """A user's container: the demo RPC handler as its own, and a listener."""

    rpcs = providers.List(providers.Singleton(AcmeRpc))
    listeners = providers.List(providers.Object((SERVER_LAUNCHED, LAUNCHED.append, 0)))


async def test_demo_false_leaves_only_your_handlers_and_listeners_run() -> None:
    """server.demo: false drops the demo handlers; a subclass's own RPC handler and listener
    are linked in."""
    LAUNCHED.clear()
    async with running(Realtime, server={"demo": False}) as container:
        gos = container.gos_web_socket
        assert "acme.topic" not in gos.topic_registry()
        assert "acme.rpc" in gos.rpc_registry()
        assert len(LAUNCHED) == 1


async def test_the_memory_pusher_stands_in_for_a_transport() -> None:
    """use_memory_pusher(replaces=["zmq"]) makes gos_web_socket.zmq.pusher the in-memory one,
    and a push through it reaches a subscriber of the running server."""
    container = make_container(memory=False, pushers={"zmq": {"enabled": False}})
    use_memory_pusher(container, replaces=["zmq"])
    zmq_pusher = containers.get_service(container, "gos_web_socket.zmq.pusher")
    assert zmq_pusher is memory_pusher(container)
    async with containers.get_service(container, "gos_web_socket.runtime"):
        client = await WampTestClient.connect(url_of(container))
        client.subscribe("acme/channel/lobby")
        assert await client.call("acme/rpc/sum", 1, 2) == [3]  # SUBSCRIBE handled by now
        await zmq_pusher.push({"hi": 1}, "acme_topic", {"room": "lobby"})
        assert await client.next_event("acme/channel/lobby", timeout=5) == {"hi": 1}
        await client.close()


async def test_the_example_server_runs_and_a_push_reaches_its_topic() -> None:
    """`server --config config.yaml` in the example serves ChatTopic; `push chat_room` over
    ZeroMQ reaches a subscriber of chat/room/lobby."""
    env = server_env()
    server = ServerProcess(env, "--config", "config.yaml", cwd=EXAMPLE)
    await server.start()
    try:
        client = await server.connect()
        client.subscribe("chat/room/lobby")
        assert await client.call("chat/rpc/shout", "ready") == ["READY"]  # SUBSCRIBE handled
        push = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "gos_web_socket.app", "push", "chat_room", "-p", "room=lobby",
             "-d", '{"text": "hi"}', "--config", "config.yaml"],
            cwd=EXAMPLE, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert push.returncode == 0, push.stderr
        assert await client.next_event("chat/room/lobby", timeout=10) == {
            "room": "lobby",
            "said": {"text": "hi"},
        }
        await client.close()
    finally:
        await server.stop()
    assert await server.wait() == 0, server.output
