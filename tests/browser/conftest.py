"""Fixtures for the browser tests: Debian's Chromium through Playwright, and a real server stack.

The stack is the container's own: WampServer, the AMQP and ZeroMQ push handlers and all three
pushers, started and stopped by the container's runtime, as in ``make run``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from dependency_injector import providers

from gos_web_socket import containers
from gos_web_socket.settings import Settings
from tests.support.chromium import launch, require_chromium
from tests.support.rabbitmq import RabbitMQNode, free_port
from tests.support.waiting import eventually

try:
    from playwright.async_api import Browser, Page, async_playwright
except ImportError:  # fail in the fixture, with the fix, rather than a bare collection error
    async_playwright = None

ROOM = "lobby"  # the room the README pushes to
CHANNEL = f"acme/channel/{ROOM}"


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium and Playwright; a missing one fails (never skips) with what to run."""
    return require_chromium()


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    """Headless Chromium, one per test (cheap: about 0.3 s to launch)."""
    async with async_playwright() as playwright:
        browser = await launch(playwright)
        yield browser
        await browser.close()


class Stack:
    """The container's runtime (server, push handlers, pushers, the demo page), restartable."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.container = containers.Container()
        self.container.settings.override(providers.Object(settings))
        self.runtime: Any = self.service("gos_web_socket.runtime")
        self.server: Any = self.service("gos_web_socket.server")
        self.http: Any = self.service("gos_web_socket.http")

    def service(self, service_id: str) -> Any:
        return containers.get_service(self.container, service_id)

    @property
    def url(self) -> str:
        """The demo page, served by the runtime's HTTP listener."""
        return f"http://127.0.0.1:{self.http.port}/"

    def pusher(self, name: str) -> Any:
        return self.service("gos_web_socket.pusher_registry")[name]

    async def start(self) -> None:
        await self.runtime.start()
        handlers = self.service("gos_web_socket.server_push_handler.registry")
        await eventually(
            lambda: all(handler.is_consuming for handler in handlers.values()),
            within=15,
            what="push handlers consuming",
            every=0.01,
        )

    async def stop(self) -> None:
        await self.runtime.stop()

    async def restart(self) -> None:
        """Stop and start the whole process's runtime on the same ports, as a deploy would."""
        await self.stop()
        await self.start()

    def subscribers(self, channel: str = CHANNEL) -> int:
        topic = self.server.topics.get(channel)
        return 0 if topic is None else len(topic)

    async def close(self) -> None:
        await self.stop()


def stack_settings(amqp: RabbitMQNode | None) -> Settings:
    """Free ports for everything; a private exchange and queue on the shared test broker."""
    ws_port = free_port()
    name = f"browser_{uuid.uuid4().hex[:8]}"
    pushers: dict[str, Any] = {
        "zmq": {"enabled": True, "port": free_port()},
        "wamp": {"enabled": True, "port": ws_port},
        "amqp": {"enabled": False},
    }
    if amqp is not None:
        pushers["amqp"] = {
            "enabled": True,
            "port": amqp.port,
            "login": "guest",
            "password": "guest",
            "queue_name": name,
            "exchange_name": name,
            "dead_letter_exchange": f"{name}_dlx",
            "dead_letter_queue": f"{name}_dead",
            "push_timeout": 5,
        }
    return Settings(
        server={
            "host": "127.0.0.1",
            "port": ws_port,
            "http": {"port": free_port()},  # the same port after a restart: the page reloads
            "metrics": {"port": 0},
            "shutdown_timeout": 2,
        },
        pushers=pushers,
    )


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    """Server + ZeroMQ and WAMP pushers (no broker needed)."""
    running = Stack(stack_settings(None))
    await running.start()
    yield running
    await running.close()


@pytest.fixture
async def full_stack(rabbitmq: RabbitMQNode) -> AsyncIterator[Stack]:
    """Server + AMQP (the run's private broker), ZeroMQ and WAMP pushers."""
    running = Stack(stack_settings(rabbitmq))
    await running.start()
    yield running
    await running.close()


@pytest.fixture
async def demo_stack() -> AsyncIterator[Stack]:
    """The stack as ``make run`` starts it: demo tokens on, anonymous allowed."""
    settings = stack_settings(None)
    http = settings.server.http.model_copy(update={"demo_tokens": True})
    server = settings.server.model_copy(update={"http": http})
    running = Stack(settings.model_copy(update={"server": server}))
    await running.start()
    yield running
    await running.close()


@pytest.fixture(params=[pytest.param("amqp", marks=pytest.mark.broker), "zmq", "wamp"])
async def pusher_stack(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Stack, str]]:
    """A stack and one pusher name; only the AMQP case needs (and starts) the broker."""
    node = request.getfixturevalue("rabbitmq") if request.param == "amqp" else None
    running = Stack(stack_settings(node))
    await running.start()
    yield running, request.param
    await running.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh page that records its console errors and uncaught exceptions."""
    context = await browser.new_context(viewport={"width": 1100, "height": 640})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.errors = errors  # type: ignore[attr-defined]
    yield page
    await context.close()
