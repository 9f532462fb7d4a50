"""A script that pushes and exits: exit status 0, nothing on stderr, and the push arrived.

On Python 3.12+ no thread may start during interpreter shutdown; the exit flush used to start
one (ZeroMQ's context termination), so every ZeroMQ push printed a traceback at exit and
skipped its final flush. Each pusher is checked in a real interpreter, in both confirm modes.
``GOS_TEST_EXIT_PYTHON`` runs the scripts with another interpreter that has the package
installed (``/tmp/v312/bin/python``), to check 3.12 and 3.13 from a 3.11 run.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import aio_pika
import pytest
import zmq

from gos_web_socket.settings.models import AmqpSettings, WampSettings
from tests.amqp.conftest import drain, raw_channel as raw_channel
from tests.support.rabbitmq import RabbitMQNode
from tests.wamp_pusher.conftest import (
    WampStub,
    router as router,
    stub as stub,
    wamp_settings as wamp_settings,
)

ROOT = Path(__file__).resolve().parents[2]
PYTHON = os.environ.get("GOS_TEST_EXIT_PYTHON", sys.executable)
ENDINGS = [
    pytest.param(mode, close, id=f"{mode}-{'close_sync' if close else 'no close'}")
    for mode in ("wait", "background")
    for close in (False, True)
]

SCRIPT = """
    from gos_web_socket.app.router import Router, load_routes
    from gos_web_socket.settings.models import DEFAULT_ROUTING
    from gos_web_socket.settings.models import {settings_class}
    from {module} import {pusher_class}

    settings = {settings_class}.model_validate({settings!r})
    pusher = {pusher_class}(settings, Router(load_routes(DEFAULT_ROUTING)))
    for n in range({count}):
        pusher.push_sync({{"n": n}}, "acme_topic", {{"room": "exit"}})
    if {close}:
        pusher.close_sync()
    print("pushed", flush=True)
"""


def push_and_exit(
    module: str, pusher_class: str, settings: object, close: bool, count: int = 3
) -> subprocess.CompletedProcess[str]:
    """Run a script that pushes ``count`` times through the pusher, closes it if ``close``
    (``close_sync()``), and exits."""
    assert hasattr(settings, "model_dump")
    values = json.loads(settings.model_dump_json())
    for secret in ("password", "token"):
        if secret in values and values[secret] is not None:
            values[secret] = getattr(settings, secret).get_secret_value()
    script = SCRIPT.format(
        settings_class=type(settings).__name__,
        module=module,
        pusher_class=pusher_class,
        settings=values,
        count=count,
        close=close,
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [PYTHON, "-c", textwrap.dedent(script)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_clean(result: subprocess.CompletedProcess[str]) -> None:
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert result.stdout == "pushed\n"


@pytest.mark.parametrize("mode, close", ENDINGS)
def test_zmq_pusher_exits_cleanly(mode: str, close: bool) -> None:
    """Every push reaches a real PULL socket, with no traceback at exit."""
    from gos_web_socket.settings.models import ZmqSettings

    context = zmq.Context()
    pull = context.socket(zmq.PULL)
    try:
        port = pull.bind_to_random_port("tcp://127.0.0.1")
        settings = ZmqSettings(port=port, confirm_mode=mode)  # type: ignore[arg-type]
        module = "gos_web_socket.app.transports.zmq.pusher"
        assert_clean(push_and_exit(module, "ZmqPusher", settings, close))
        pull.RCVTIMEO = 5000
        bodies = [json.loads(pull.recv()) for _ in range(3)]
    finally:
        pull.close(linger=0)
        context.term()
    assert [body["data"] for body in bodies] == [{"n": n} for n in range(3)]


@pytest.mark.parametrize("mode, close", ENDINGS)
async def test_wamp_pusher_exits_cleanly(
    mode: str, close: bool, stub: WampStub, wamp_settings: WampSettings
) -> None:
    """The PUBLISH frames reach the server, and the connection is closed cleanly (1000)."""
    settings = wamp_settings.model_copy(update={"confirm_mode": mode, "timeout": 5.0})
    result = await asyncio.to_thread(
        push_and_exit, "gos_web_socket.app.transports.wamp", "WampPusher", settings, close
    )
    assert_clean(result)
    frames = await stub.take(3)
    assert [json.loads(frame[2]) for frame in frames] == [{"n": n} for n in range(3)]
    assert await asyncio.wait_for(stub.closes.get(), 5) == 1000


@pytest.mark.parametrize("mode, close", ENDINGS)
async def test_amqp_pusher_exits_cleanly(
    mode: str, close: bool, rabbitmq: RabbitMQNode, raw_channel: aio_pika.abc.AbstractChannel
) -> None:
    """The pushes are in the queue, confirmed, and the connection closed without a warning."""
    settings: AmqpSettings = rabbitmq.amqp_settings(confirm_mode=mode)
    result = await asyncio.to_thread(
        push_and_exit,
        "gos_web_socket.app.transports.amqp.pusher",
        "AmqpPusher",
        settings,
        close,
    )
    assert_clean(result)
    bodies = await drain(raw_channel, settings.queue_name)
    assert [json.loads(body)["data"] for body in bodies] == [{"n": n} for n in range(3)]


def test_a_forked_child_leaves_its_parents_pusher_alone() -> None:
    """A child forked after a push_sync() has a copy of the pusher but not its loop thread:
    its exit neither waits for that thread nor touches the connection, and the parent's
    own exit still closes the pusher cleanly."""
    context = zmq.Context()
    pull = context.socket(zmq.PULL)
    try:
        port = pull.bind_to_random_port("tcp://127.0.0.1")
        script = f"""
            import os, sys, time, warnings
            from gos_web_socket.app.router import Router, load_routes
            from gos_web_socket.app.transports.zmq.pusher import ZmqPusher
            from gos_web_socket.settings.models import DEFAULT_ROUTING, ZmqSettings

            pusher = ZmqPusher(ZmqSettings(port={port}), Router(load_routes(DEFAULT_ROUTING)))
            pusher.push_sync({{"n": 0}}, "acme_topic", {{"room": "exit"}})
            # 3.12+ warns that this script's own fork() follows threads: the case under test.
            warnings.filterwarnings("ignore", "This process", DeprecationWarning)
            pid = os.fork()
            if pid == 0:
                sys.exit(0)
            started = time.monotonic()
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0
            assert time.monotonic() - started < 3, "the child waited for its parent's thread"
            pusher.push_sync({{"n": 1}}, "acme_topic", {{"room": "exit"}})
            print("pushed", flush=True)
        """
        result = subprocess.run(
            [PYTHON, "-c", textwrap.dedent(script)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert_clean(result)
        pull.RCVTIMEO = 5000
        bodies = [json.loads(pull.recv()) for _ in range(2)]
    finally:
        pull.close(linger=0)
        context.term()
    assert [body["data"] for body in bodies] == [{"n": 0}, {"n": 1}]
