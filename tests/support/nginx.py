"""A private nginx on loopback in front of a test's server, from deploy/nginx.conf."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.support.rabbitmq import free_port
from tests.support.tls import self_signed

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "nginx.conf"
NGINX_PATHS = (Path("/usr/sbin/nginx"), Path("/usr/bin/nginx"))

# The main file around deploy/nginx.conf: every path inside the prefix, in the foreground.
MAIN = """\
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {prefix}/gos-websocket.conf;
}}
"""


def require_nginx() -> Path:
    """Debian's nginx, or a failed test that says what to run (never a skip)."""
    for path in NGINX_PATHS:
        if path.exists():
            return path
    pytest.fail("nginx not found (/usr/sbin/nginx): run make test, it installs Debian's nginx")


def render(upstream: str, http_port: int, https_port: int, cert: Path, key: Path) -> str:
    """deploy/nginx.conf with its placeholders filled for loopback."""
    values = {
        "UPSTREAM": upstream,
        "HTTP_LISTEN": f"127.0.0.1:{http_port}",
        "HTTPS_LISTEN": f"127.0.0.1:{https_port}",
        "SERVER_NAME": "localhost",
        "CERTIFICATE": str(cert),
        "CERTIFICATE_KEY": str(key),
    }
    text = TEMPLATE.read_text()
    for name, value in values.items():
        text = text.replace(f"@@{name}@@", value)
    directives = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    left = [line for line in directives if "@@" in line]
    assert not left, f"deploy/nginx.conf has placeholders the test does not fill: {left}"
    return text


class Nginx:
    """nginx with its own prefix, conf, pid and logs in a temp dir; ``stop()`` removes it all."""

    def __init__(self, upstream_port: int) -> None:
        self.binary = require_nginx()
        self.prefix = Path(tempfile.mkdtemp(prefix="gos-nginx-"))
        self.prefix.chmod(0o755)  # nginx's workers may run as nobody
        self.http_port, self.https_port = free_port(), free_port()
        self.certificate, key = self_signed(self.prefix)
        conf = render(
            f"127.0.0.1:{upstream_port}", self.http_port, self.https_port, self.certificate, key
        )
        (self.prefix / "gos-websocket.conf").write_text(conf)
        (self.prefix / "nginx.conf").write_text(MAIN.format(prefix=self.prefix))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.http_port}/"

    @property
    def wss_url(self) -> str:
        return f"wss://127.0.0.1:{self.https_port}/"

    def error_log(self) -> str:
        log = self.prefix / "error.log"
        return log.read_text(errors="replace") if log.exists() else ""

    def start(self, within: float = 10.0) -> Nginx:
        """Start in the foreground and wait until both ports accept connections."""
        command = [str(self.binary), "-p", str(self.prefix), "-c", str(self.prefix / "nginx.conf")]
        command += ["-e", str(self.prefix / "error.log")]  # not /var/log/nginx, even at startup
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=dict(os.environ)
        )
        deadline = time.monotonic() + within
        while not all(_accepts(port) for port in (self.http_port, self.https_port)):
            if self.process.poll() is not None:
                output = (
                    self.process.stdout.read().decode(errors="replace")
                    if self.process.stdout
                    else ""
                )
                self.stop()
                pytest.fail(f"nginx exited with {self.process.returncode}: {output}")
            if time.monotonic() > deadline:
                log = self.error_log()
                self.stop()
                pytest.fail(f"nginx did not listen within {within} s: {log}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Stop nginx (SIGTERM: fast shutdown) and remove its prefix."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        shutil.rmtree(self.prefix, ignore_errors=True)


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0
