"""Settings: GOS defaults, environment overrides, other files, and readable errors."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import Field

from gos_web_socket.app.exceptions import ConfigurationError
from gos_web_socket.settings import DEFAULT_ROUTING, TransportSettings, ZmqSettings, load_settings


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


GOS_PUSHERS_BLOCK = """\
gos_web_socket:
  server: {port: 1337, host: 127.0.0.1}
  pushers:
    amqp:
      default: false # Unused
      host: 127.0.0.1
      port: 5672
      login: guest
      password: guest
      vhost: /
      read_timeout: 0
      write_timeout: 0
      connect_timeout: 0
      queue_name: gos_websocket
      exchange_name: gos_websocket_exchange
    wamp:
      default: false # Unused
      host: 127.0.0.1
      port: 1337
      ssl: false
      origin: null
    zmq:
      default: false # Unused
      host: 127.0.0.1
      port: 5555
      persistent: true
      protocol: tcp
      linger: -1
"""
"""The ``pushers:`` block exactly as the GosWebSocketBundle 1.x/2.x documentation shows it."""


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigurationError) as info:
        load_settings(path)
    return info.value.problems


def test_documented_gos_pushers_block_loads_enabled_with_one_deprecation(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The bundle's documented block loads: all three pushers on, one warning about `default`."""
    with caplog.at_level(logging.WARNING):
        s = load_settings(write(tmp_path, GOS_PUSHERS_BLOCK))
    assert s.pushers.enabled_names() == ["amqp", "wamp", "zmq"]
    assert s.pushers.amqp.login == "guest" and s.pushers.amqp.password is not None
    assert s.pushers.amqp.password.get_secret_value() == "guest"
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and warnings[0].name == "gos_web_socket.settings.models"
    message = warnings[0].getMessage()
    assert "deprecated" in message
    assert all(f"pushers.{name}.default" in message for name in ("amqp", "wamp", "zmq"))


def test_a_configured_node_is_enabled_and_enabled_false_still_disables(tmp_path: Path) -> None:
    """As canBeEnabled(): writing a node, even `wamp: ~`, enables it; `enabled: false` wins."""
    s = load_settings(write(tmp_path, "gos_web_socket:\n  pushers:\n    wamp: {port: 8080}\n"))
    assert s.pushers.wamp.enabled is True and s.pushers.wamp.port == 8080
    assert load_settings(
        write(tmp_path, "gos_web_socket:\n  pushers:\n    wamp:\n")
    ).pushers.wamp.enabled
    off = (
        "gos_web_socket:\n  pushers:\n    wamp: {enabled: false, port: 8}\n    zmq: {enabled: no}\n"
    )
    assert load_settings(write(tmp_path, off)).pushers.enabled_names() == []


def test_nodes_not_in_the_file_keep_the_defaults(tmp_path: Path) -> None:
    """A file without a pushers node keeps zmq on and amqp / wamp off."""
    s = load_settings(write(tmp_path, "gos_web_socket:\n  pushers:\n    wamp: {}\n"))
    assert s.pushers.enabled_names() == ["wamp", "zmq"]


def test_an_environment_variable_alone_does_not_enable_a_pusher(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GOS_WEB_SOCKET__PUSHERS__AMQP__HOST only overrides a value; ENABLED=true switches it on."""
    monkeypatch.setenv("GOS_WEB_SOCKET__PUSHERS__AMQP__HOST", "rabbit.internal")
    s = load_settings()
    assert s.pushers.amqp.host == "rabbit.internal" and s.pushers.amqp.enabled is False
    monkeypatch.setenv("GOS_WEB_SOCKET__PUSHERS__AMQP__ENABLED", "true")
    monkeypatch.setenv("GOS_WEB_SOCKET__PUSHERS__AMQP__LOGIN", "guest")
    monkeypatch.setenv("GOS_WEB_SOCKET__PUSHERS__AMQP__PASSWORD", "guest")
    assert load_settings().pushers.amqp.enabled is True


def test_environment_beats_enabling_by_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node written in the file is on, but ENABLED=false in the environment turns it off."""
    monkeypatch.setenv("GOS_WEB_SOCKET__PUSHERS__WAMP__ENABLED", "false")
    s = load_settings(write(tmp_path, "gos_web_socket:\n  pushers:\n    wamp: {port: 8080}\n"))
    assert s.pushers.wamp.enabled is False


def test_unknown_key_is_named_with_the_allowed_keys(tmp_path: Path) -> None:
    """A misspelt key is called a key, and the line lists what the node accepts."""
    text = "gos_web_socket:\n  pushers:\n    amqp: {prot: 5672, login: a, password: b}\n"
    (line,) = problems(write(tmp_path, text))
    assert line.startswith(
        "unknown key pushers.amqp.prot (allowed: enabled, confirm_mode, max_in_flight, host, port,"
    )
    assert "exchange_name" in line and "prot," not in line and "default" not in line


def test_unknown_key_at_the_top_of_the_tree(tmp_path: Path) -> None:
    """An unknown key directly under gos_web_socket lists the root's keys."""
    (line,) = problems(write(tmp_path, "gos_web_socket:\n  servers: {}\n"))
    assert line == (
        "unknown key servers (allowed: server, pushers, logging, origins, blocked_ip_addresses, "
        "authentication, mercure, presence)"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "gos_websocket:\n  server: {port: 1}\n",
            "unknown root key gos_websocket (allowed: gos_web_socket)",
        ),
        ("server:\n  port: 1\n", "unknown root key server (allowed: gos_web_socket)"),
        ("", "the file is empty; expected the root key gos_web_socket:"),
        ("# only a comment\n", "the file is empty; expected the root key gos_web_socket:"),
        ("- a\n- b\n", "the file holds a list; expected the root key gos_web_socket:"),
        ("just words\n", "the file holds a string; expected the root key gos_web_socket:"),
        (
            "gos_web_socket:\n  server: [\n",
            "invalid YAML at line 3, column 1: expected the node content, but found '<stream end>'",
        ),
        (
            "gos_web_socket:\n  server:\n    port: 1\n   host: x\n",
            "invalid YAML at line 4, column 4: "
            "expected <block end>, but found '<block mapping start>'",
        ),
    ],
    ids=["gos_websocket", "server", "empty", "comment", "list", "string", "flow", "indent"],
)
def test_file_mistakes_give_one_line_naming_the_file(
    tmp_path: Path, text: str, expected: str
) -> None:
    """A wrong root, an empty or non-mapping file and bad YAML: one line, the file named."""
    path = write(tmp_path, text)
    assert problems(path) == [f"{path}: {expected}"]


def test_root_node_that_is_not_a_mapping(tmp_path: Path) -> None:
    """`gos_web_socket: 5` keeps the key.path: value is not allowed shape."""
    assert problems(write(tmp_path, "gos_web_socket: 5\n")) == [
        "gos_web_socket: 5 is not allowed: the node must be a mapping of settings"
    ]


def test_empty_root_node_gives_the_defaults(tmp_path: Path) -> None:
    """`gos_web_socket:` with nothing under it is the defaults, as Symfony reads `~`."""
    s = load_settings(write(tmp_path, "gos_web_socket:\n"))
    assert s.server.port == 1337 and s.pushers.enabled_names() == ["zmq"]


def test_out_of_range_port_in_the_file(tmp_path: Path) -> None:
    """port: 70000 names the key, the value and the bound."""
    assert problems(write(tmp_path, "gos_web_socket:\n  server: {port: 70000}\n")) == [
        "server.port: 70000 is not allowed: Input should be less than or equal to 65535"
    ]


def test_relative_paths_resolve_against_the_config_files_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """router.resources and tls cert/key files name files beside the config, whatever the cwd."""
    conf = tmp_path / "conf"
    conf.mkdir()
    text = (
        "gos_web_socket:\n"
        "  server:\n"
        "    router: {resources: [routes/chat.yaml, /abs/other.yaml]}\n"
        "    tls: {enabled: true, certfile: tls/cert.pem, keyfile: tls/key.pem}\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    s = load_settings(write(conf, text))
    assert s.server.router.resources == [conf / "routes/chat.yaml", Path("/abs/other.yaml")]
    assert s.server.tls.certfile == conf / "tls/cert.pem"
    assert s.server.tls.keyfile == conf / "tls/key.pem"


def test_shipped_routing_file_is_found_from_any_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default router.resources is the shipped settings/routing.yaml, an absolute path."""
    monkeypatch.chdir(tmp_path)
    (resource,) = load_settings().server.router.resources
    assert resource == DEFAULT_ROUTING and resource.is_file()


class MineSettings(TransportSettings):
    """A custom transport's node, validated by the transport itself."""

    host: str = "127.0.0.1"
    port: int = Field(7000, ge=1, le=65535)


def test_custom_pusher_node_is_kept_and_validated_by_its_model(tmp_path: Path) -> None:
    """pushers.mine is not refused; node("mine", MineSettings) validates it, on by default."""
    text = "gos_web_socket:\n  pushers:\n    mine: {port: 7001}\n    quiet: {enabled: false}\n"
    s = load_settings(write(tmp_path, text))
    mine = s.pushers.node("mine", MineSettings)
    assert isinstance(mine, MineSettings) and (mine.enabled, mine.port) == (True, 7001)
    assert s.pushers.node("quiet", MineSettings).enabled is False
    assert s.pushers.enabled_names() == ["zmq", "mine"]


def test_custom_node_errors_name_the_key_under_pushers(tmp_path: Path) -> None:
    """A custom node's bad value and unknown key read like every other config error."""
    text = "gos_web_socket:\n  pushers:\n    mine: {port: 70000, prot: 1}\n"
    with pytest.raises(ConfigurationError) as info:
        load_settings(write(tmp_path, text)).pushers.node("mine", MineSettings)
    assert sorted(info.value.problems) == [
        "pushers.mine.port: 70000 is not allowed: Input should be less than or equal to 65535",
        "unknown key pushers.mine.prot (allowed: enabled, confirm_mode, max_in_flight, host, port)",
    ]


def test_custom_node_enabled_must_be_a_boolean(tmp_path: Path) -> None:
    """`enabled` of a custom node is checked at load time, before any transport reads it."""
    text = "gos_web_socket:\n  pushers:\n    mine: {enabled: maybe}\n    bad: 5\n"
    assert sorted(problems(write(tmp_path, text))) == [
        "pushers.bad: 5 is not allowed: the node must be a mapping of settings",
        "pushers.mine.enabled: 'maybe' is not allowed: Input should be a valid boolean, "
        "unable to interpret input",
    ]


def test_custom_node_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """GOS_WEB_SOCKET__PUSHERS__MINE__PORT reaches the custom node, converted by its model."""
    monkeypatch.setenv("GOS_WEB_SOCKET__PUSHERS__MINE__PORT", "7002")
    s = load_settings()
    assert s.pushers.node("mine", MineSettings).port == 7002


def test_absent_custom_node_gives_the_models_defaults() -> None:
    """A transport registered without a node still gets its settings: the model defaults."""
    s = load_settings()
    assert s.pushers.node("mine", MineSettings) == MineSettings()
    assert s.pushers.enabled_names() == ["zmq"]


def test_node_of_a_builtin_name_is_the_builtin_settings() -> None:
    """node("zmq", ZmqSettings) is the validated zmq node itself."""
    s = load_settings()
    assert s.pushers.node("zmq", ZmqSettings) is s.pushers.zmq


def test_unclaimed_lists_custom_nodes_no_transport_reads(tmp_path: Path) -> None:
    """The container passes the transports it knows; the rest are the unknown pusher keys."""
    text = "gos_web_socket:\n  pushers:\n    mine: {}\n    typo: {}\n    amqp: {enabled: false}\n"
    s = load_settings(write(tmp_path, text))
    assert s.pushers.unclaimed(["amqp", "wamp", "zmq", "mine"]) == ["typo"]
    assert s.pushers.unclaimed([]) == ["mine", "typo"]


def test_explicit_values_merge_into_the_file_and_beat_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """load_settings(server={"port": ...}) (the CLI's -p) changes one key and keeps the others."""
    monkeypatch.setenv("GOS_WEB_SOCKET__SERVER__PORT", "9999")
    path = write(tmp_path, "gos_web_socket:\n  server: {host: 0.0.0.0, keepalive_interval: 7}\n")
    s = load_settings(path, server={"port": 1234})
    assert (s.server.host, s.server.port, s.server.keepalive_interval) == ("0.0.0.0", 1234, 7)


def test_nodes_with_nothing_under_them_are_empty(tmp_path: Path) -> None:
    """`server:`, `tls:` or `pushers:` with their children commented out keep the defaults."""
    text = "gos_web_socket:\n  server:\n    tls:\n  pushers:\n  logging:\n"
    s = load_settings(write(tmp_path, text))
    assert s.server.port == 1337 and s.server.tls.enabled is False
    assert s.pushers.enabled_names() == ["zmq"] and s.logging.format == "kv"


def test_a_global_output_budget_below_twice_the_per_client_one_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """max_outgoing_total under 2 x max_outgoing_buffer names both keys; 0 turns it off."""
    monkeypatch.setenv("GOS_WEB_SOCKET__SERVER__MAX_OUTGOING_TOTAL", "1048576")
    with pytest.raises(ConfigurationError, match="max_outgoing_total .*max_outgoing_buffer"):
        load_settings()
    monkeypatch.setenv("GOS_WEB_SOCKET__SERVER__MAX_OUTGOING_TOTAL", "0")
    assert load_settings().server.max_outgoing_total == 0
