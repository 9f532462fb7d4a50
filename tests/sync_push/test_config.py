"""confirm_mode / max_in_flight on every pusher node: defaults, one-line errors, the container."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from gos_web_socket import containers
from gos_web_socket.app.events import PUSH_FAIL, EventDispatcher, PusherFailEvent
from gos_web_socket.app.exceptions import ConfigurationError, FailedPush, PushFailed
from gos_web_socket.settings import load_settings
from tests.support.rabbitmq import free_port
from tests.support.server import make_container


def config(tmp_path: Path, pushers: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text("gos_web_socket:\n  pushers:\n" + pushers)
    return path


def test_every_builtin_node_waits_by_default() -> None:
    """The shipped settings keep push_sync waiting on every pusher, window 1,000."""
    pushers = load_settings().pushers
    for node in (pushers.amqp, pushers.zmq, pushers.wamp):
        assert (node.confirm_mode, node.max_in_flight) == ("wait", 1000)


def test_bad_values_are_one_line_each(tmp_path: Path) -> None:
    """A mode that does not exist and a window of 0 are each one line naming key and value."""
    path = config(
        tmp_path,
        "    zmq: {confirm_mode: later, max_in_flight: 0}\n    wamp: {max_in_flight: lots}\n",
    )
    with pytest.raises(ConfigurationError) as info:
        load_settings(path)
    assert sorted(info.value.problems) == [
        "pushers.wamp.max_in_flight: 'lots' is not allowed: Input should be a valid integer, "
        "unable to parse string as an integer",
        "pushers.zmq.confirm_mode: 'later' is not allowed: Input should be 'wait' or 'background'",
        "pushers.zmq.max_in_flight: 0 is not allowed: Input should be greater than or equal to 1",
    ]


def test_environment_sets_the_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """GOS_WEB_SOCKET__PUSHERS__ZMQ__CONFIRM_MODE=background switches the zmq pusher."""
    monkeypatch.setenv("GOS_WEB_SOCKET__PUSHERS__ZMQ__CONFIRM_MODE", "background")
    monkeypatch.setenv("GOS_WEB_SOCKET__PUSHERS__ZMQ__MAX_IN_FLIGHT", "64")
    node = load_settings().pushers.zmq
    assert (node.confirm_mode, node.max_in_flight) == ("background", 64)


def test_container_pusher_reads_its_node_and_fires_push_fail_on_its_dispatcher() -> None:
    """The container's zmq pusher in background mode, with no server listening: its pushes
    fail after send_timeout, close_sync lists them, and the container's dispatcher saw
    push_fail for each (its listeners depend on the pushers: the dispatcher comes lazily)."""
    seen: list[PusherFailEvent] = []
    lock = threading.Lock()

    def record(event: PusherFailEvent) -> None:
        with lock:
            seen.append(event)

    dispatcher = EventDispatcher()
    dispatcher.add_listener(PUSH_FAIL, record)
    node = {"port": free_port(), "send_timeout": 0.2, "confirm_mode": "background"}
    container = make_container(pushers={"zmq": {**node, "max_in_flight": 7}}, dispatcher=dispatcher)
    pusher = containers.get_service(container, "gos_web_socket.zmq.pusher")
    assert (pusher.confirm_mode, pusher.max_in_flight) == ("background", 7)
    for n in range(3):
        pusher.push_sync({"n": n}, "acme_topic", {"room": "1"})
    with pytest.raises(PushFailed, match="3 of 3 background pushes failed") as info:
        pusher.close_sync(timeout=10)
    assert all("no ZeroMQ peer" in str(f.error) for f in info.value.failures)
    assert sorted(e.failure.data["n"] for e in seen) == [0, 1, 2]
    assert all(e.pusher is pusher for e in seen)


async def test_server_metrics_count_pusher_failures_once_not_as_handler_failures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A pusher's background failure on the server's dispatcher: the handler-failure metric
    ignores it (no listener error), gos_websocket_pusher_failed_total counts it."""
    from gos_web_socket.app.metrics import ServerMetrics
    from tests.support.server import make_server

    server = make_server()
    pusher = containers.get_service(make_container(), "gos_web_socket.zmq.pusher")
    pusher.stats.failed = 1
    metrics = ServerMetrics(server, {"zmq": pusher})
    failure = FailedPush("acme_topic", "acme/channel/1", None, PushFailed("gone"))
    await server.dispatcher.dispatch(
        PUSH_FAIL, PusherFailEvent(message="{}", pusher=pusher, failure=failure)
    )
    assert "failed" not in caplog.text
    text = metrics.render().decode()
    assert 'gos_websocket_pusher_failed_total{pusher="zmq",transport="zmq"} 1.0' in text
    assert not metrics.failed
