"""The command line, run as users run it: `python -m app ...` in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_routes_lists_the_demo_routes() -> None:
    """`routes` prints name, pattern and callback of each route."""
    result = run("routes")
    assert result.returncode == 0, result.stderr
    assert "acme_topic" in result.stdout and "acme/channel/{room}" in result.stdout
    assert "acme.topic" in result.stdout and "acme_rpc" in result.stdout


def test_routes_match_shows_route_and_attributes() -> None:
    """`routes --match acme/channel/42` names acme_topic with room=42."""
    result = run("routes", "--match", "acme/channel/42")
    assert result.returncode == 0, result.stderr
    assert "route:    acme_topic" in result.stdout and "room=42" in result.stdout


def test_routes_match_without_route_fails_cleanly() -> None:
    """No match is an error line and exit 1, not a traceback."""
    result = run("routes", "--match", "nowhere/at/all")
    assert result.returncode == 1
    assert 'No routes found for "nowhere/at/all"' in result.stderr
    assert "Traceback" not in result.stderr


def test_config_prints_the_tree_with_defaults_and_masks_secrets() -> None:
    """`config` prints the resolved gos_web_socket tree; passwords never appear."""
    result = run(
        "config",
        env={
            "GOS_WEB_SOCKET__PUSHERS__AMQP__ENABLED": "true",
            "GOS_WEB_SOCKET__PUSHERS__AMQP__LOGIN": "guest",
            "GOS_WEB_SOCKET__PUSHERS__AMQP__PASSWORD": "s3cret-pw",
        },
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("gos_web_socket:")
    assert "queue_name: gos_websocket" in out and "exchange_name: gos_websocket_exchange" in out
    assert "port: 5555" in out and "protocol: tcp" in out
    assert "s3cret-pw" not in out and "'**********'" in out


def test_bad_env_value_exits_2_with_one_line_naming_the_key() -> None:
    """GOS_WEB_SOCKET__PUSHERS__ZMQ__PORT=abc stops start-up: exit 2, one line, no traceback."""
    result = run("config", env={"GOS_WEB_SOCKET__PUSHERS__ZMQ__PORT": "abc"})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pushers.zmq.port" in lines[0] and "'abc'" in lines[0]


def test_config_option_reads_another_file(tmp_path: Path) -> None:
    """--config PATH is honoured; a bad value there is reported the same way."""
    path = tmp_path / "c.yaml"
    path.write_text("gos_web_socket:\n  server:\n    port: 4242\n")
    result = run("config", "--config", str(path))
    assert result.returncode == 0 and "port: 4242" in result.stdout
    path.write_text("gos_web_socket:\n  server:\n    port: -1\n")
    result = run("server", "--config", str(path))
    assert result.returncode == 2 and "server.port: -1" in result.stderr


def test_server_port_must_be_numeric() -> None:
    """GOS's message for a non-numeric port."""
    result = run("server", "-p", "http")
    assert result.returncode == 2 and "The port option must be a numeric value." in result.stderr


def test_push_to_unknown_route_is_a_routing_error() -> None:
    """Route errors from generate() reach the user as one line and exit 1."""
    result = run("push", "nope_route", "-d", '{"a": 1}', "--pusher", "zmq")
    assert result.returncode == 1 and "routing error" in result.stderr


def test_push_with_missing_parameter_names_it() -> None:
    """A route variable without a value is named."""
    result = run("push", "acme_topic", "-d", '"hi"', "--pusher", "zmq")
    assert result.returncode == 1 and "room" in result.stderr


def test_push_with_unknown_pusher_lists_registered_ones() -> None:
    """An alias that is not enabled is refused with the registered ones."""
    result = run("push", "acme_topic", "-p", "room=1", "--pusher", "amqp")
    assert result.returncode == 1
    assert 'A pusher named "amqp" has not been registered.' in result.stderr
    assert "zmq" in result.stderr
