"""deploy/Containerfile as a process: its ENTRYPOINT, CMD, ENV and the config file it copies,
run on this machine (no image registry is reachable here, so no image is built), receiving an
AMQP push enabled by the one variable the file documents."""

from __future__ import annotations

import json
import os
import shlex
import sys
import uuid
from pathlib import Path

from gos_web_socket.app.router import load_router
from gos_web_socket.app.transports.amqp.pusher import AmqpPusher
from gos_web_socket.settings.models import AmqpSettings
from tests.support.process import ServerProcess
from tests.support.rabbitmq import RabbitMQNode, free_port

ROOT = Path(__file__).resolve().parents[2]
CONTAINERFILE = ROOT / "deploy" / "Containerfile"
PROJECT = ROOT / "examples" / "own_project"
VENV_BIN = Path(sys.executable).parent


def instructions() -> list[tuple[str, str]]:
    """The Containerfile's instructions (``\\`` continuations joined, comments dropped)."""
    joined = CONTAINERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in joined.splitlines()]
    found = []
    for line in lines:
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword, rest.strip()))
    return found


def image_process() -> tuple[list[str], dict[str, str], dict[str, Path]]:
    """The command (ENTRYPOINT + CMD), the environment (ENV) and the files COPY puts in the
    image (image path -> checkout path), as the Containerfile says."""
    command: list[str] = []
    env: dict[str, str] = {}
    copies: dict[str, Path] = {}
    for keyword, rest in instructions():
        if keyword == "ENTRYPOINT":
            command = json.loads(rest) + command
        elif keyword == "CMD":
            command = command + json.loads(rest)
        elif keyword == "ENV":
            env |= dict(word.split("=", 1) for word in shlex.split(rest))
        elif keyword == "COPY" and not rest.startswith(". "):
            source, target = rest.split()
            copies[target] = ROOT / source
    return command, env, copies


def test_the_image_is_production_by_default() -> None:
    """The image runs `server` with its own config file: every interface, no demo, no pusher
    until its variable says so, ZeroMQ bound on every interface once enabled."""
    import yaml

    command, _, copies = image_process()
    assert command[0] == "gos-websocket" and command[-1] == "server"
    config = copies[command[command.index("--config") + 1]]
    tree = yaml.safe_load(config.read_text())["gos_web_socket"]
    assert tree["server"]["host"] == "0.0.0.0" and tree["server"]["demo"] is False
    assert tree["server"]["http"]["enabled"] is False
    assert tree["pushers"]["zmq"] == {"enabled": False, "host": "0.0.0.0", "port": 5555}
    assert tree["pushers"]["amqp"]["enabled"] is False
    text = CONTAINERFILE.read_text()
    for pusher in ("AMQP", "ZMQ"):  # one variable per pusher, stated in the file
        assert f"GOS_WEB_SOCKET__PUSHERS__{pusher}__ENABLED=true" in text


async def test_the_images_entrypoint_receives_an_amqp_push(rabbitmq: RabbitMQNode) -> None:
    """The entrypoint with the image's environment, AMQP turned on by its variable (and the
    broker's address and login), and the example project's topics as a user's image adds them:
    it listens on 0.0.0.0, serves no demo, and a push through AMQP reaches a subscriber."""
    command, image_env, copies = image_process()
    config = command.index("--config") + 1
    command[config] = str(copies[command[config]])  # the file COPY puts at that path
    program = [str(VENV_BIN / command[0]), *command[1:-1]]
    suffix = uuid.uuid4().hex[:8]
    ws_port = free_port()
    operator = {  # what `podman run -e ...` adds: the one enabling variable, the broker's address
        "GOS_WEB_SOCKET__PUSHERS__AMQP__ENABLED": "true",
        "GOS_WEB_SOCKET__PUSHERS__AMQP__HOST": "127.0.0.1",
        "GOS_WEB_SOCKET__PUSHERS__AMQP__PORT": str(rabbitmq.port),
        "GOS_WEB_SOCKET__PUSHERS__AMQP__LOGIN": "guest",
        "GOS_WEB_SOCKET__PUSHERS__AMQP__PASSWORD": "guest",
        "GOS_WEB_SOCKET__PUSHERS__AMQP__QUEUE_NAME": f"image_{suffix}",
        "GOS_WEB_SOCKET__PUSHERS__AMQP__EXCHANGE_NAME": f"image_x_{suffix}",
        # the machine is shared: the image's fixed ports move to free ones
        "GOS_WEB_SOCKET__SERVER__PORT": str(ws_port),
        "GOS_WEB_SOCKET__SERVER__METRICS__PORT": str(free_port()),
        # a user's image: FROM this one, its package copied in, named by two variables
        "GOS_WEB_SOCKET__SERVER__CONTAINER": "chat.realtime:Container",
        "GOS_WEB_SOCKET__SERVER__ROUTER__RESOURCES": json.dumps(
            [str(PROJECT / "chat" / "routing.yaml")]
        ),
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOS_WEB_SOCKET__")}
    env |= image_env | operator
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT), str(ROOT)])
    server = ServerProcess(env, cwd=PROJECT, program=program)
    await server.start()
    try:
        client = await server.connect()
        client.subscribe("chat/room/lobby")
        assert await client.call("chat/rpc/shout", "hi") == ["HI"]  # SUBSCRIBE handled by now
        assert f"on 0.0.0.0:{ws_port}" in server.output, server.output
        router = load_router([PROJECT / "chat" / "routing.yaml"])
        amqp = AmqpPusher(
            AmqpSettings(
                enabled=True,
                port=rabbitmq.port,
                login="guest",
                password="guest",  # type: ignore[arg-type]
                queue_name=f"image_{suffix}",
                exchange_name=f"image_x_{suffix}",
            ),
            router,
        )
        try:
            await amqp.push({"text": "from the image"}, "chat_room", {"room": "lobby"})
        finally:
            await amqp.close()
        event = await client.next_event("chat/room/lobby", timeout=15)
        assert event == {"room": "lobby", "said": {"text": "from the image"}}
        await client.close()
        assert "demo page listener" not in server.output
    finally:
        await server.stop()
