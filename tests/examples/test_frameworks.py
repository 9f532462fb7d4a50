"""examples/frameworks run for real: each framework's own server (or worker) process pushes, a
real server delivers, and a WAMP v1 client subscribed to the room receives the push.

The WebSocket server runs in the test (``gos_web_socket.testing.running``) with the demo
routes; every example runs from its directory as its README says, configured by
``GOS_WEB_SOCKET__*`` variables only, and is stopped as a user stops it (Ctrl-C, or SIGTERM
for the worker): it must exit 0 with no traceback and no "Event loop is closed" in its output.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from gos_web_socket import containers
from gos_web_socket.testing import WampTestClient, running, url_of
from tests.support.rabbitmq import RabbitMQNode, free_port
from tests.support.waiting import eventually

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "frameworks"
CHANNEL = "acme/channel/lobby"
NOISE = ("Traceback", "Event loop is closed", "Exception ignored")


class AppProcess:
    """One example's process, output to a file (a pipe could fill up), stopped by a signal."""

    def __init__(self, args: list[str], cwd: Path, env: Mapping[str, str]) -> None:
        self.args, self.cwd, self.env = args, cwd, dict(env)
        self._output = tempfile.TemporaryFile()
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, *self.args, cwd=self.cwd, env=self.env,
            stdin=asyncio.subprocess.DEVNULL, stdout=self._output, stderr=self._output,
        )  # fmt: skip

    @property
    def output(self) -> str:
        self._output.seek(0)
        return self._output.read().decode(errors="replace")

    async def stop(self, sig: signal.Signals = signal.SIGINT) -> int:
        """Signal it as a user would and wait; SIGKILL (and a failing test) after 20 s."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(sig)
        try:
            return await asyncio.wait_for(self.process.wait(), 20)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            message = f"{self.args} did not stop on {sig.name}:\n{self.output}"
            raise AssertionError(message) from None

    async def wait_http(self, url: str, within: float = 20.0) -> None:
        """Until the web server answers anything at ``url`` (fails if the process died)."""
        deadline = time.monotonic() + within
        async with httpx.AsyncClient() as http:
            while True:
                assert self.process is not None and self.process.returncode is None, self.output
                try:
                    await http.get(url)
                    return
                except httpx.TransportError:
                    assert time.monotonic() < deadline, f"{url} not up within {within} s"
                    await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def app_process(
    args: list[str], cwd: Path, env: Mapping[str, str], stop: signal.Signals = signal.SIGINT
) -> AsyncIterator[AppProcess]:
    """The process started, then stopped with ``stop``: it must exit 0 without noise."""
    process = AppProcess(args, cwd, env)
    await process.start()
    try:
        yield process
    finally:
        code = await process.stop(stop)
    output = process.output
    assert code == 0, output
    assert not [word for word in NOISE if word in output], output


@contextlib.asynccontextmanager
async def server_and_subscriber(
    **pushers: Any,
) -> AsyncIterator[tuple[containers.Container, WampTestClient]]:
    """Our server (demo routes, the given pushers) and a client subscribed to the lobby."""
    async with running(pushers=pushers) as container:
        client = await WampTestClient.connect(url_of(container))
        client.subscribe(CHANNEL)
        assert await client.call("acme/rpc/sum", 1, 2) == [3]  # its SUBSCRIBE is handled by now
        try:
            yield container, client
        finally:
            await client.close()


async def run(
    args: list[str], cwd: Path, env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    """A one-shot command of the example (``manage.py migrate``, ``celery call``)."""
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


async def bad_input_is_400(http: httpx.AsyncClient, url: str, body_code: int = 400) -> None:
    """Issue 30 item 10: a body without text and a room the route refuses are the client's
    errors (FastAPI's own validation answers 422), never a 500 with a traceback."""
    posted = await http.post(url.format(room="lobby"), content=b"not json")
    assert posted.status_code == body_code, posted.text
    posted = await http.post(url.format(room="no%20spaces"), json={"text": "x"})
    assert posted.status_code == 400, posted.text
    assert "room" in posted.text


def zmq_env(zmq_port: int) -> dict[str, str]:
    """The example's environment: the ZeroMQ pusher aimed at the test's server."""
    return {**os.environ, "GOS_WEB_SOCKET__PUSHERS__ZMQ__PORT": str(zmq_port)}


async def test_django_view_and_post_save_signal_push(tmp_path: Path) -> None:
    """Under `manage.py runserver`, saving a note pushes it from the post_save receiver, and a
    view pushes directly; both with push_sync, both reach the lobby's subscriber."""
    zmq_port, http_port = free_port(), free_port()
    site = EXAMPLES / "django_site"
    env = {**zmq_env(zmq_port), "NOTES_DB": str(tmp_path / "notes.sqlite3")}
    migrate = await run(["manage.py", "migrate", "--run-syncdb"], site, env)
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    async with server_and_subscriber(zmq={"port": zmq_port}) as (_, client):
        base = f"http://127.0.0.1:{http_port}"
        args = ["manage.py", "runserver", "--noreload", f"127.0.0.1:{http_port}"]
        async with app_process(args, site, env) as django, httpx.AsyncClient() as http:
            await django.wait_http(base)
            saved = await http.post(f"{base}/rooms/lobby/notes", json={"text": "saved"})
            assert saved.status_code == 201, saved.text
            note_id = saved.json()["id"]
            assert await client.next_event(CHANNEL, timeout=10) == {
                "note": {"id": note_id, "text": "saved"}
            }
            told = await http.post(f"{base}/rooms/lobby/announce", json={"text": "hello"})
            assert told.json() == {"pushed": True}
            assert await client.next_event(CHANNEL, timeout=10) == {"announce": "hello"}
            for path in ("notes", "announce"):
                await bad_input_is_400(http, f"{base}/rooms/{{room}}/{path}")


@pytest.mark.parametrize("app_spec", ["fastapi_app:app", "starlette_app:app"])
async def test_async_route_pushes_with_the_lifespans_pusher(app_spec: str) -> None:
    """Under uvicorn (FastAPI, then plain Starlette), the route awaits the pusher the lifespan
    opened; the push reaches the subscriber, and the lifespan's shutdown closes the pusher."""
    zmq_port, http_port = free_port(), free_port()
    args = ["-m", "uvicorn", app_spec, "--port", str(http_port)]
    async with server_and_subscriber(zmq={"port": zmq_port}) as (_, client):
        async with app_process(args, EXAMPLES, zmq_env(zmq_port)) as app:
            base = f"http://127.0.0.1:{http_port}"
            await app.wait_http(base)
            async with httpx.AsyncClient() as http:
                posted = await http.post(f"{base}/rooms/lobby/messages", json={"text": "async"})
            assert posted.status_code == 201, posted.text
            assert await client.next_event(CHANNEL, timeout=10) == {"text": "async"}
            async with httpx.AsyncClient() as http:
                code = 422 if app_spec.startswith("fastapi") else 400
                await bad_input_is_400(http, f"{base}/rooms/{{room}}/messages", body_code=code)
    assert "Application shutdown complete" in app.output


async def test_flask_route_pushes_with_the_wired_pusher() -> None:
    """Under `flask run`, the route's wired ZeroMQ pusher push_syncs; the subscriber gets it."""
    zmq_port, http_port = free_port(), free_port()
    args = ["-m", "flask", "--app", "flask_app", "run", "--port", str(http_port)]
    async with server_and_subscriber(zmq={"port": zmq_port}) as (_, client):
        async with app_process(args, EXAMPLES, zmq_env(zmq_port)) as app:
            base = f"http://127.0.0.1:{http_port}"
            await app.wait_http(base)
            async with httpx.AsyncClient() as http:
                posted = await http.post(f"{base}/rooms/lobby/messages", json={"text": "sync"})
            assert posted.status_code == 201, posted.text
            assert await client.next_event(CHANNEL, timeout=10) == {"text": "sync"}
            async with httpx.AsyncClient() as http:
                await bad_input_is_400(http, f"{base}/rooms/{{room}}/messages")


async def test_celery_worker_pushes_at_the_end_of_a_job(rabbitmq: RabbitMQNode) -> None:
    """A real Celery worker (prefork, the run's RabbitMQ as broker) runs a job queued with
    `celery call`; the job's AMQP push reaches the subscriber through our AMQP push handler,
    and the worker's warm shutdown closes the pusher."""
    name = f"celery_{uuid.uuid4().hex[:8]}"
    amqp = {
        "enabled": True,
        "port": rabbitmq.port,
        "login": "guest",
        "password": "guest",
        "queue_name": name,
        "exchange_name": f"{name}_x",
        "dead_letter_exchange": f"{name}_dlx",
        "dead_letter_queue": f"{name}_dead",
    }
    env = {
        **os.environ,
        "CELERY_BROKER_URL": f"amqp://guest:guest@127.0.0.1:{rabbitmq.port}//",
        **{f"GOS_WEB_SOCKET__PUSHERS__AMQP__{key.upper()}": str(v) for key, v in amqp.items()},
    }
    worker = ["-m", "celery", "-A", "celery_app", "worker", "--concurrency", "1", "-l", "info"]
    async with server_and_subscriber(amqp=amqp, zmq={"enabled": False}) as (container, client):
        handler = containers.get_service(container, "gos_web_socket.amqp.server_push_handler")
        # its queue is bound: the push is routable
        await eventually(
            lambda: handler.is_consuming, 15, "AMQP push handler consuming", every=0.02
        )
        async with app_process(worker, EXAMPLES, env, stop=signal.SIGTERM) as app:
            job = ["celery_app.build_report", "--args", '["lobby", 1000]']
            call = await run(["-m", "celery", "-A", "celery_app", "call", *job], EXAMPLES, env)
            assert call.returncode == 0, call.stdout + call.stderr
            event = await client.next_event(CHANNEL, timeout=20)
            assert event == {"report": "ready", "total": sum(range(1000))}
    assert "succeeded" in app.output
