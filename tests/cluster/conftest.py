"""The ``cluster`` group: a three-node RabbitMQ cluster on loopback, started once per run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.cluster import RabbitMQCluster


@pytest.fixture(scope="session")
def rabbitmq_cluster() -> Iterator[RabbitMQCluster]:
    """Three clustered nodes (own names, ports, data dirs; one cookie and epmd)."""
    cluster = RabbitMQCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
