"""A private RabbitMQ node on loopback for one test run: started once, stoppable and restartable."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from gos_web_socket.settings.models import AmqpSettings
from tests.support.ports import free_port

RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")


class BrokerSetupError(RuntimeError):
    """RabbitMQ is not installed or would not start; the message says what to do."""


class RabbitMQNode:
    """One broker in a temp dir, listening on 127.0.0.1 only (AMQP, dist port and epmd)."""

    def __init__(self) -> None:
        if not (RABBIT_BIN / "rabbitmq-server").exists():
            raise BrokerSetupError(
                "rabbitmq-server is not installed: run `make test` (it installs it), "
                "or `apt-get install -y rabbitmq-server`"
            )
        self.dir = Path(tempfile.mkdtemp(prefix="gos-rabbit-"))
        self.port = free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.nodename = f"gostest{self.port}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self._process: subprocess.Popen[bytes] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        (self.dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\n"
            "loopback_users.guest = true\n"
            "log.console = false\n"
        )
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq-env.conf").write_text("")

    @property
    def env(self) -> dict[str, str]:
        d = str(self.dir)
        return {
            **os.environ,
            "HOME": d,
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": f"{d}/mnesia",
            "RABBITMQ_LOG_BASE": f"{d}/log",
            "RABBITMQ_CONFIG_FILE": f"{d}/rabbitmq",
            "RABBITMQ_ENABLED_PLUGINS_FILE": f"{d}/enabled_plugins",
            "RABBITMQ_PID_FILE": f"{d}/rmq.pid",
            "RABBITMQ_CONF_ENV_FILE": f"{d}/rabbitmq-env.conf",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_EPMD_PORT": str(self.epmd_port),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def start(self, timeout: float = 90.0) -> None:
        """Start the node and wait until it accepts AMQP connections."""
        log = open(self.dir / "server.out", "ab")  # noqa: SIM115 - lives as long as the node
        self._process = subprocess.Popen(
            [str(RABBIT_BIN / "rabbitmq-server")],
            env=self.env,
            cwd=self.dir,  # an Erlang crash dump lands in the node's temp dir, not the repo
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._start_watchdog()
        self._wait_ready(timeout)

    def _start_watchdog(self) -> None:
        """Kill the broker and its epmd if this process dies without tearing down (SIGKILL,
        a CI timeout), so no broker outlives its test run."""
        assert self._process is not None
        script = (
            f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done; "
            f"kill -9 -{self._process.pid} 2>/dev/null; "
            f"sleep 1; ERL_EPMD_PORT={self.epmd_port} epmd -kill >/dev/null 2>&1; "
            f"rm -rf {self.dir}"
        )
        self._watchdog = subprocess.Popen(
            ["sh", "-c", script],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise BrokerSetupError(
                    f"rabbitmq-server exited with {self._process.returncode}; "
                    f"see {self.dir / 'server.out'}"
                )
            if self._amqp_answers():
                return
            time.sleep(0.25)
        raise BrokerSetupError(f"RabbitMQ did not accept connections within {timeout} s")

    def _amqp_answers(self) -> bool:
        """True once the broker answers the AMQP protocol header with its Connection.Start."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"AMQP\x00\x00\x09\x01")
                return len(sock.recv(8)) > 0
        except OSError:
            return False

    def amqp_settings(self, **overrides: Any) -> AmqpSettings:
        """Enabled AMQP settings on this node, with queue and exchange names no other test uses."""
        tag = uuid.uuid4().hex[:8]
        values: dict[str, Any] = {
            "enabled": True,
            "host": "127.0.0.1",
            "port": self.port,
            "login": "guest",
            "password": "guest",
            "queue_name": f"q_{tag}",
            "exchange_name": f"x_{tag}",
            "dead_letter_exchange": f"dlx_{tag}",
            "dead_letter_queue": f"dlq_{tag}",
            **overrides,
        }
        return AmqpSettings(**values)

    def ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(RABBIT_BIN / "rabbitmqctl"), "-n", self.nodename, *args],
            env=self.env,
            cwd=self.dir,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def stop_app(self) -> None:
        """Stop the broker application (connections drop, data stays): a broker outage."""
        self.ctl("stop_app")

    def start_app(self) -> None:
        """Start the application again after stop_app() and wait for AMQP."""
        self.ctl("start_app")
        self._wait_ready(60)

    def kill(self) -> None:
        """SIGKILL the node (no shutdown at all: a crash); its data stays for ``start()``."""
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=15)
        if self._watchdog is not None:  # start() gives the new node its own
            self._watchdog.kill()
            self._watchdog.wait(timeout=5)
            self._watchdog = None

    def queue_counts(self, queue: str) -> tuple[int, int]:
        """``(ready, unacknowledged)`` messages of ``queue``, as the broker counts them."""
        out = self.ctl(
            "list_queues",
            "-q",
            "--no-table-headers",
            "name",
            "messages_ready",
            "messages_unacknowledged",
        ).stdout
        for line in out.splitlines():
            fields = line.split()
            if len(fields) == 3 and fields[0] == queue:
                return int(fields[1]), int(fields[2])
        raise LookupError(f"queue {queue!r} not found on the broker: {out!r}")

    def purge(self, queue: str) -> None:
        self.ctl("purge_queue", queue)

    def stop(self) -> None:
        """Stop the node and epmd, and remove the temp dir."""
        if self._process is not None and self._process.poll() is None:
            self.ctl("stop", str(self.dir / "rmq.pid"), timeout=30)
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait(timeout=5)
        subprocess.run(
            ["epmd", "-kill"],
            env={**os.environ, "ERL_EPMD_PORT": str(self.epmd_port)},
            capture_output=True,
            timeout=10,
            check=False,
        )
        if self._watchdog is not None:
            self._watchdog.kill()
            self._watchdog.wait(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)
