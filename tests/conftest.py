"""Fixtures shared by the whole suite: one private RabbitMQ per run, free ports, settings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.rabbitmq import RabbitMQNode, free_port


@pytest.fixture(scope="session")
def rabbitmq() -> Iterator[RabbitMQNode]:
    """The run's private broker, started on first use; a missing broker fails the setup."""
    node = RabbitMQNode()
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def unused_port() -> int:
    return free_port()
