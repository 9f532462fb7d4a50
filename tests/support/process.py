"""`gos-websocket server` as a real process for a test: its environment, start, signals, output."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gos_web_socket.app.testing import ConnectFailed, WampTestClient
from tests.support.rabbitmq import RabbitMQNode, free_port

ROOT = Path(__file__).resolve().parents[2]


def server_env(
    rabbitmq: RabbitMQNode | None = None, ws_port: int | None = None, **settings: Any
) -> dict[str, str]:
    """The environment of a server process: free ports, and the AMQP transport on the run's
    private broker with a queue and exchanges of its own when ``rabbitmq`` is given.

    ``settings`` are extra variables without the ``GOS_WEB_SOCKET__`` prefix, e.g.
    ``PUSHERS__AMQP__PREFETCH_COUNT=20``.
    """
    env = {
        **os.environ,
        # the checkout first (tests.*), then what the caller had: a worktree's gos_web_socket alias
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "GOS_WEB_SOCKET__SERVER__PORT": str(ws_port or free_port()),
        "GOS_WEB_SOCKET__SERVER__HTTP__PORT": "0",
        "GOS_WEB_SOCKET__SERVER__METRICS__PORT": str(free_port()),
        "GOS_WEB_SOCKET__PUSHERS__ZMQ__PORT": str(free_port()),
    }
    if rabbitmq is not None:
        suffix = uuid.uuid4().hex[:8]
        env |= {
            "GOS_WEB_SOCKET__PUSHERS__AMQP__ENABLED": "true",
            "GOS_WEB_SOCKET__PUSHERS__AMQP__PORT": str(rabbitmq.port),
            "GOS_WEB_SOCKET__PUSHERS__AMQP__LOGIN": "guest",
            "GOS_WEB_SOCKET__PUSHERS__AMQP__PASSWORD": "guest",
            "GOS_WEB_SOCKET__PUSHERS__AMQP__QUEUE_NAME": f"proc_{suffix}",
            "GOS_WEB_SOCKET__PUSHERS__AMQP__EXCHANGE_NAME": f"proc_x_{suffix}",
            "GOS_WEB_SOCKET__PUSHERS__AMQP__DEAD_LETTER_EXCHANGE": f"proc_dlx_{suffix}",
            "GOS_WEB_SOCKET__PUSHERS__AMQP__DEAD_LETTER_QUEUE": f"proc_dead_{suffix}",
            "GOS_WEB_SOCKET__PUSHERS__AMQP__RECONNECT_INTERVAL": "0.2",
        }
    env |= {f"GOS_WEB_SOCKET__{key}": str(value) for key, value in settings.items()}
    return env


def setting(env: dict[str, str], key: str) -> str:
    """One setting of ``env`` by its path without the prefix, e.g. ``SERVER__PORT``."""
    return env[f"GOS_WEB_SOCKET__{key}"]


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class ServerProcess:
    """One `gos-websocket server` process; its output goes to a file (a pipe could fill up).

    ``cwd`` is where it runs: the repository, or a user's project (examples/own_project);
    ``program`` what runs: this checkout's, or an installed console script."""

    def __init__(
        self,
        env: dict[str, str],
        *args: str,
        cwd: Path = ROOT,
        program: Sequence[str] = (sys.executable, "-m", "gos_web_socket.app"),
    ) -> None:
        self.env = env
        self.cwd = cwd
        self.args = args
        self.program = tuple(program)
        self.ws_url = f"ws://127.0.0.1:{setting(env, 'SERVER__PORT')}/"
        self.metrics_port = int(setting(env, "SERVER__METRICS__PORT"))
        self._output = tempfile.TemporaryFile()
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, new_session: bool = False) -> ServerProcess:
        """``new_session``: its own process group, to signal as a terminal's Ctrl-C does."""
        self.process = await asyncio.create_subprocess_exec(
            *self.program, "server", *self.args,
            cwd=self.cwd, env=self.env, start_new_session=new_session,
            stdin=asyncio.subprocess.DEVNULL, stdout=self._output, stderr=self._output,
        )  # fmt: skip
        return self

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    async def wait(self, timeout: float = 15.0) -> int:  # noqa: ASYNC109
        assert self.process is not None
        return await asyncio.wait_for(self.process.wait(), timeout)

    @property
    def output(self) -> str:
        self._output.seek(0)
        return self._output.read().decode(errors="replace")

    async def connect(self, within: float = 20.0) -> WampTestClient:
        """A WAMP v1 client, retrying until the server listens (fails if the process died)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            assert self.process is not None and self.process.returncode is None, self.output
            try:
                return await WampTestClient.connect(self.ws_url)
            except (ConnectFailed, OSError):
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.1)

    async def subscriber(self, channel: str, within: float = 20.0) -> WampTestClient:
        """A client subscribed to ``channel``: a round trip after SUBSCRIBE makes it certain."""
        client = await self.connect(within)
        client.subscribe(channel)
        await client.call("acme/rpc/sum", 1)
        return client

    async def stop(self) -> None:
        """SIGTERM if still running, then SIGKILL if it does not exit in time."""
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), 15)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
