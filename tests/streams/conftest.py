"""Stream suite fixtures: stream-mode settings on the run's broker, handlers per node name."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from gos_web_socket.app.events import EventDispatcher
from gos_web_socket.app.router import Router
from gos_web_socket.app.transports.amqp.handler import AmqpServerPushHandler
from gos_web_socket.settings.models import AmqpSettings, StreamSettings
from tests.amqp.conftest import (
    make_router,
    pusher as pusher,  # its pusher, on the stream settings
)
from tests.support.rabbitmq import RabbitMQNode


@pytest.fixture
def router() -> Router:
    return make_router()


@pytest.fixture
def stream_settings(rabbitmq: RabbitMQNode, tmp_path: Path) -> AmqpSettings:
    """``queue_mode: stream`` on names no other test uses; offsets under the test's tmp dir;
    no history fill (a test that wants one says ``stream.fill``)."""
    return rabbitmq.amqp_settings(
        push_timeout=15,
        reconnect_interval=0.5,
        queue_mode="stream",
        prefetch_count=50,
        stream=StreamSettings(state_dir=tmp_path / "state", probe_timeout=0.3, fill=0),
    )


@pytest.fixture
def amqp_settings(stream_settings: AmqpSettings) -> AmqpSettings:
    """What the AMQP suite's fixtures build on (its ``pusher``): the stream settings."""
    return stream_settings


StartNode = Callable[..., Awaitable[AmqpServerPushHandler]]


@pytest.fixture
async def start_node(stream_settings: AmqpSettings, router: Router) -> AsyncIterator[StartNode]:
    """Start a stream handler as node ``name`` (its own offset file); closed after the test."""
    started: list[AmqpServerPushHandler] = []

    async def start(app: Any, name: str, **overrides: Any) -> AmqpServerPushHandler:
        stream = stream_settings.stream.model_copy(update={"node_name": name})
        settings = stream_settings.model_copy(update={"stream": stream, **overrides})
        handler = AmqpServerPushHandler(settings, router, EventDispatcher(), node_id=name)
        started.append(handler)
        await handler.start(app)
        return handler

    try:
        yield start
    finally:
        for handler in started:
            await handler.close()


# Headless Chromium and a page that records its errors, as the browser suite has them.
from tests.browser.conftest import browser, chromium, page  # noqa: E402,F401
