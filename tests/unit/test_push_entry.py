"""``gos_web_socket.push``: a web worker pushes without loading the server stack."""

from __future__ import annotations

import subprocess
import sys

from gos_web_socket.push import create_pushers
from gos_web_socket.testing import WampTestClient, running, url_of
from tests.support.rabbitmq import free_port

SERVER_SIDE = (
    "gos_web_socket.app.server",
    "gos_web_socket.app.auth",
    "gos_web_socket.app.workers",
    "autobahn",
)
"""What a process that only pushes must not load (the WAMP pusher's autobahn included)."""


def loaded_modules(code: str) -> list[str]:
    """Every module ``python -X importtime -c code`` imported, in a fresh interpreter."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    # "import time: self [us] | cumulative | imported package", the name indented by depth
    return [
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    ]


def server_side(modules: list[str]) -> list[str]:
    return [m for m in modules if m == "autobahn" or m.startswith(SERVER_SIDE)]


def test_importing_the_entry_loads_no_server_side_module() -> None:
    modules = loaded_modules("import gos_web_socket.push")
    assert "gos_web_socket.push" in modules  # the parse found the entry itself
    assert server_side(modules) == []


def test_building_the_enabled_pushers_loads_no_server_side_module() -> None:
    """The ZeroMQ pusher (on by default) and the registry: still no server, auth or workers."""
    code = (
        "from gos_web_socket.push import create_pushers\n"
        "pushers = create_pushers()\n"
        "assert list(pushers.registry()) == ['zmq'], list(pushers.registry())\n"
    )
    modules = loaded_modules(code)
    assert "gos_web_socket.app.transports.zmq.pusher" in modules
    assert server_side(modules) == []


def test_the_wamp_pusher_loads_autobahn_only_when_built() -> None:
    modules = loaded_modules(
        "from gos_web_socket.push import create_pushers\ncreate_pushers().wamp()"
    )
    assert "autobahn" in modules


def test_the_pushers_are_built_as_the_full_container_builds_them() -> None:
    """Same class per transport, disabled ones left out of the registry, as in containers.py."""
    pushers = create_pushers(pushers={"amqp": {"enabled": False}})
    assert type(pushers.zmq()).__name__ == "ZmqPusher"
    assert type(pushers.amqp()).__name__ == "AmqpPusher"
    assert "amqp" not in pushers.registry()
    assert pushers.registry()["zmq"] is pushers.zmq()


def test_a_pushers_only_config_may_name_the_servers_own_transports() -> None:
    """A ``pushers.<name>`` node without a pusher here is the server's (a push handler): the
    web worker leaves it alone, where the full container would call it unknown."""
    pushers = create_pushers(pushers={"lines": {"enabled": True}})
    assert list(pushers.registry()) == ["zmq"]


async def test_a_push_through_the_entry_reaches_a_subscriber() -> None:
    """A running server (ZeroMQ on a free port); the pushing side is only the entry's."""
    zmq = {"zmq": {"port": free_port()}}
    async with running(pushers=zmq) as container:
        client = await WampTestClient.connect(url_of(container))
        pusher = create_pushers(pushers=zmq).registry()["zmq"]
        try:
            client.subscribe("acme/channel/lobby")
            assert await client.call("acme/rpc/sum", 1, 2) == [3]  # SUBSCRIBE handled by now
            await pusher.push({"hi": 1}, "acme_topic", {"room": "lobby"})
            assert await client.next_event("acme/channel/lobby", timeout=5) == {"hi": 1}
        finally:
            await pusher.close()
            await client.close()
