"""Settings: GOS defaults, environment overrides, other files, and readable errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.exceptions import ConfigurationError
from settings import load_settings


def test_defaults_are_the_gos_defaults() -> None:
    """The shipped YAML gives the documented GOS defaults."""
    s = load_settings()
    amqp, zmq, wamp = s.pushers.amqp, s.pushers.zmq, s.pushers.wamp
    assert (amqp.host, amqp.port, amqp.vhost) == ("127.0.0.1", 5672, "/")
    assert (amqp.read_timeout, amqp.write_timeout, amqp.connect_timeout) == (0, 0, 0)
    assert (amqp.queue_name, amqp.exchange_name) == ("gos_websocket", "gos_websocket_exchange")
    assert amqp.enabled is False and amqp.login is None
    assert (zmq.host, zmq.port, zmq.persistent, zmq.protocol, zmq.linger) == (
        "127.0.0.1",
        5555,
        True,
        "tcp",
        -1,
    )
    assert zmq.enabled is True
    assert (wamp.ssl, wamp.origin, wamp.enabled) == (False, None, False)
    assert s.server.keepalive_interval == 30 and s.server.origin_check is False
    assert s.allowed_origins[:2] == ["localhost", "127.0.0.1"]


def test_environment_overrides_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    """GOS_WEB_SOCKET__PUSHERS__AMQP__HOST beats the file."""
    monkeypatch.setenv("GOS_WEB_SOCKET__PUSHERS__AMQP__HOST", "rabbit.internal")
    monkeypatch.setenv("GOS_WEB_SOCKET__SERVER__PORT", "9000")
    s = load_settings()
    assert s.pushers.amqp.host == "rabbit.internal" and s.server.port == 9000


def test_another_file(tmp_path: Path) -> None:
    """--config PATH reads another file; unspecified keys keep their defaults."""
    path = tmp_path / "other.yaml"
    path.write_text("gos_web_socket:\n  server:\n    port: 8443\n")
    s = load_settings(path)
    assert s.server.port == 8443 and s.pushers.zmq.port == 5555


def test_bad_port_names_the_key_and_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """One line per problem: key path, the value, what is allowed."""
    monkeypatch.setenv("GOS_WEB_SOCKET__PUSHERS__ZMQ__PORT", "abc")
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    assert len(info.value.problems) == 1
    line = info.value.problems[0]
    assert line.startswith("pushers.zmq.port: 'abc'") and "integer" in line


def test_several_problems_give_several_lines(tmp_path: Path) -> None:
    """Every problem is reported, not just the first."""
    path = tmp_path / "bad.yaml"
    path.write_text(
        "gos_web_socket:\n"
        "  server: {port: 70000, color: blue}\n"
        "  pushers:\n"
        "    zmq: {protocol: udp}\n"
        "    amqp: {enabled: true}\n"
    )
    with pytest.raises(ConfigurationError) as info:
        load_settings(path)
    text = "\n".join(info.value.problems)
    assert "server.port: 70000" in text and "less than or equal to 65535" in text
    assert "server.color" in text
    assert "pushers.zmq.protocol: 'udp'" in text and "'tcp'" in text
    assert "pushers.amqp: login and password required" in text
    assert len(info.value.problems) == 4


def test_default_origins_are_refused(tmp_path: Path) -> None:
    """localhost and 127.0.0.1 are always allowed, so listing them is an error, as in GOS."""
    path = tmp_path / "o.yaml"
    path.write_text("gos_web_socket:\n  origins: [localhost]\n")
    with pytest.raises(ConfigurationError, match="localhost is added by default"):
        load_settings(path)


def test_missing_file_is_a_configuration_error(tmp_path: Path) -> None:
    """A --config path that does not exist is named."""
    with pytest.raises(ConfigurationError, match="nope.yaml"):
        load_settings(tmp_path / "nope.yaml")
