"""Fixtures shared by the whole suite: one private RabbitMQ per run, free ports, settings.

Every test is marked by what it needs outside Python, from the fixtures it uses (below) or a
mark of its own where it starts the thing itself; `make test-fast` deselects those markers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.rabbitmq import RabbitMQNode, free_port

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("app", "settings")

NEEDS = {
    "rabbitmq": "broker",
    "rabbitmq_cluster": "cluster",  # tests/cluster: three RabbitMQ nodes
    "chromium": "browser",  # the browser suites' session fixture (browser and page use it)
    "proxied": "nginx",  # tests/browser/test_nginx.py: the stack behind a private nginx
    "attack_run": "slow",  # tests/hostile: a server under 200 attacking clients for 40 s
    "ghost_run": "slow",  # ... and 1000 unfinished handshakes
}
"""Fixture name → the marker of what it starts, or `slow` for the load runs (pytest's fixture
closure includes every fixture a test uses indirectly)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture in set(getattr(item, "fixturenames", ())) & NEEDS.keys():
            item.add_marker(NEEDS[fixture])


def pytest_sessionstart(session: pytest.Session) -> None:
    """A module added since `make install` is not linked into the editable install yet (its
    link tree, build/__editable__.*): say what to run instead of a ModuleNotFoundError."""
    import gos_web_socket

    for location in gos_web_socket.__path__:
        tree = Path(location)
        if not tree.parent.name.startswith("__editable__"):
            continue  # an installed wheel, or the checkout itself
        linked = {path.relative_to(tree) for path in tree.rglob("*.py")}
        checkout = {
            path.relative_to(ROOT) for top in PACKAGES for path in (ROOT / top).rglob("*.py")
        }
        if missing := sorted(str(path) for path in checkout - linked):
            pytest.exit(
                f"not in the editable install yet: {', '.join(missing)}; run `make install`"
            )


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
