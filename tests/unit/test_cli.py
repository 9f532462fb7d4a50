"""The command line, run as users run it: `gos-websocket ...` in a subprocess."""

from __future__ import annotations

import io
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from gos_web_socket.app import cli
from tests.support.rabbitmq import free_port
from tests.unit.test_push_entry import loaded_modules
from tests.unit.test_settings import GOS_PUSHERS_BLOCK

ROOT = Path(__file__).resolve().parents[2]


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gos_web_socket.app", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def one_config_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a command stopped by bad config (exit 2, no traceback)."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("config error: ")
    return lines[0].removeprefix("config error: ")


HEAVY = ("gos_web_socket.app.server", "gos_web_socket.app.auth", "autobahn")
"""The server stack (the CLI itself imports app.workers, which is light, for `worker`)."""
WHOLE_CONTAINER = ("gos_web_socket.containers", "dependency_injector")


def heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if m.startswith(HEAVY)]


def test_routes_and_config_load_neither_the_container_nor_the_server() -> None:
    """With the default container, `routes` and `config` build the router or settings alone."""
    commands = [["routes"], ["routes", "--match", "acme/rpc/x"], ["config"]]
    code = "from gos_web_socket.app.__main__ import main\n" + "".join(
        f"assert main({command!r}) == 0\n" for command in commands
    )  # one interpreter: a module any of them loads is listed
    modules = loaded_modules(code)
    assert "gos_web_socket.app.cli" in modules  # the parse found the command itself
    assert heavy(modules) == []
    assert [m for m in modules if m.startswith(WHOLE_CONTAINER)] == []


def test_push_builds_its_pusher_without_the_server_stack() -> None:
    """`push` with the default container builds the pushers-only container, not the server's."""
    code = "from gos_web_socket.app.__main__ import main; main(['push', 'no_such_route'])"
    modules = loaded_modules(code)
    assert "gos_web_socket.app.transports.zmq.pusher" in modules  # the enabled pusher was built
    assert heavy(modules) == []
    assert "gos_web_socket.containers" not in modules


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


def test_documented_gos_pushers_block_loads_with_all_three_enabled(tmp_path: Path) -> None:
    """The bundle's documented pushers block: exit 0, amqp/wamp/zmq on, one deprecation line."""
    path = tmp_path / "gos.yaml"
    path.write_text(GOS_PUSHERS_BLOCK)
    result = run("config", "--config", str(path))
    assert result.returncode == 0, result.stderr
    pushers = yaml.safe_load(result.stdout)["gos_web_socket"]["pushers"]
    assert {name: node["enabled"] for name, node in pushers.items()} == {
        "amqp": True,
        "wamp": True,
        "zmq": True,
    }
    assert pushers["amqp"]["login"] == "guest" and "default" not in pushers["amqp"]
    (line,) = result.stderr.splitlines()
    assert "level=warning" in line and "deprecated config key ignored" in line
    assert "pushers.amqp.default, pushers.wamp.default, pushers.zmq.default" in line


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("gos_websocket:\n  server: {port: 1}\n", "unknown root key gos_websocket"),
        ("server:\n  port: 1\n", "unknown root key server (allowed: gos_web_socket)"),
        ("", "the file is empty"),
        ("gos_web_socket:\n  server: [\n", "invalid YAML at line 3, column 1"),
        ("- a\n", "the file holds a list"),
        ("gos_web_socket:\n  server: {port: 70000}\n", "server.port: 70000 is not allowed"),
        ("gos_web_socket:\n  pushers: {zmq: {prot: 1}}\n", "unknown key pushers.zmq.prot"),
    ],
    ids=["gos_websocket-root", "server-root", "empty", "invalid-yaml", "list", "port", "unknown"],
)
def test_config_file_mistakes_give_one_line_and_exit_2(
    tmp_path: Path, text: str, expected: str
) -> None:
    """Each mistake in a --config file: `config error: ...`, exit 2, no traceback."""
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert expected in one_config_error(run("server", "--config", str(path)))


@pytest.mark.parametrize("command", ["server", "health"])
def test_out_of_range_port_option_is_one_config_line(command: str) -> None:
    """`server -p 70000` names server.port; `health -p 70000` the metrics listener's port."""
    line = one_config_error(run(command, "-p", "70000"))
    key = "server.port" if command == "server" else "server.metrics.port"
    assert line == f"{key}: 70000 is not allowed: Input should be less than or equal to 65535"


def test_config_option_works_before_and_after_the_subcommand(tmp_path: Path) -> None:
    """`--config PATH config` and `config --config PATH` both read PATH."""
    path = tmp_path / "c.yaml"
    path.write_text("gos_web_socket:\n  server:\n    port: 4242\n")
    for args in (("--config", str(path), "config"), ("config", "--config", str(path))):
        result = run(*args)
        assert result.returncode == 0, result.stderr
        assert yaml.safe_load(result.stdout)["gos_web_socket"]["server"]["port"] == 4242


def test_config_option_before_the_subcommand_reports_its_errors(tmp_path: Path) -> None:
    """A bad file given before the sub-command is read, not silently replaced by the default."""
    path = tmp_path / "c.yaml"
    path.write_text("gos_web_socket:\n  server:\n    port: -1\n")
    assert one_config_error(run("--config", str(path), "routes")).startswith("server.port: -1 ")


def test_relative_router_resources_follow_the_config_file_not_the_cwd(tmp_path: Path) -> None:
    """`routes --config conf/gos.yaml` run from another folder loads conf/routes/chat.yaml."""
    conf = tmp_path / "conf"
    (conf / "routes").mkdir(parents=True)
    (conf / "routes" / "chat.yaml").write_text(
        'chat_room:\n  pattern: "chat/{room}"\n  callback: "chat.topic"\n'
    )
    (conf / "gos.yaml").write_text(
        "gos_web_socket:\n  server:\n    router:\n      resources: [routes/chat.yaml]\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run("routes", "--config", str(conf / "gos.yaml"), cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert "chat_room" in result.stdout and "chat/{room}" in result.stdout
    assert "acme_topic" not in result.stdout


PUSHER_DOWN = {
    "amqp": (
        {
            "GOS_WEB_SOCKET__PUSHERS__AMQP__ENABLED": "true",
            "GOS_WEB_SOCKET__PUSHERS__AMQP__LOGIN": "guest",
            "GOS_WEB_SOCKET__PUSHERS__AMQP__PASSWORD": "guest",
            "GOS_WEB_SOCKET__PUSHERS__AMQP__PORT": "{port}",
            "GOS_WEB_SOCKET__PUSHERS__AMQP__PUSH_TIMEOUT": "1",
        },
        "error: AMQP broker at 127.0.0.1:{port} did not confirm the push within 1.0 s",
    ),
    "wamp": (
        {
            "GOS_WEB_SOCKET__PUSHERS__WAMP__ENABLED": "true",
            "GOS_WEB_SOCKET__PUSHERS__WAMP__PORT": "{port}",
            "GOS_WEB_SOCKET__PUSHERS__WAMP__TIMEOUT": "1",
        },
        "error: WAMP server ws://127.0.0.1:{port}/ not reachable",
    ),
    "zmq": (
        {
            "GOS_WEB_SOCKET__PUSHERS__ZMQ__PORT": "{port}",
            "GOS_WEB_SOCKET__PUSHERS__ZMQ__SEND_TIMEOUT": "0.5",
        },
        "error: no ZeroMQ peer at tcp://127.0.0.1:{port} took the push",
    ),
}


@pytest.mark.parametrize("pusher", sorted(PUSHER_DOWN))
def test_push_to_a_peer_that_is_down_is_one_error_line(pusher: str) -> None:
    """A pusher towards a closed port: exit 1, exactly one stderr line, no client library logs."""
    port = str(free_port())
    env, expected = PUSHER_DOWN[pusher]
    result = run(
        "push", "acme_topic", "-p", "room=1", "-d", '{"a": 1}', "--pusher", pusher,
        env={key: value.format(port=port) for key, value in env.items()},
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(expected.format(port=port)), line
    assert result.stdout == ""


def test_verbose_push_shows_the_client_library_logs() -> None:
    """`-v` before the sub-command keeps the broker client's own lines for debugging."""
    result = run(
        "-v", "push", "acme_topic", "-p", "room=1", "--pusher", "amqp",
        env={
            key: value.format(port=free_port()) for key, value in PUSHER_DOWN["amqp"][0].items()
        },
    )  # fmt: skip
    assert result.returncode == 1
    assert "logger=aiormq" in result.stderr and len(result.stderr.splitlines()) > 1


@pytest.fixture
def logging_state() -> Iterator[None]:
    """cli.main configures the root logger and quiets loggers: put them back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    quiet = {name: logging.getLogger(name).level for name in cli.QUIET_LOGGERS}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in quiet.items():
        logging.getLogger(name).setLevel(old)


@pytest.mark.usefixtures("logging_state")
def test_an_unexpected_error_is_one_line_not_a_traceback() -> None:
    """A bug surfacing as RuntimeError still ends as one `error:` line and exit 1."""

    def broken_services(config: Path | None, overrides: Mapping[str, Any], profile: bool) -> Any:
        raise RuntimeError("boom\nsecond line")

    err = io.StringIO()
    code = cli.main(["routes"], broken_services, out=io.StringIO(), err=err)
    assert code == 1
    assert err.getvalue() == "error: RuntimeError: boom second line\n"


def test_health_port_option_is_the_metrics_listener() -> None:
    """`health -a 127.0.0.1 -p PORT` asks PORT; nothing listens there, so exit 1 naming it."""
    port = free_port()
    result = run("health", "-a", "127.0.0.1", "-p", str(port), "--timeout", "2")
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"not healthy: no server answering at 127.0.0.1:{port} ")


def test_config_prints_custom_pusher_nodes_with_secrets_masked(tmp_path: Path) -> None:
    """A custom transport's node is shown as written, but password-like keys are masked."""
    path = tmp_path / "c.yaml"
    path.write_text(
        "gos_web_socket:\n  pushers:\n    mine: {host: h, api_token: t0ps3cret, password: pw1}\n"
    )
    result = run("config", "--config", str(path))
    assert result.returncode == 0, result.stderr
    mine = yaml.safe_load(result.stdout)["gos_web_socket"]["pushers"]["mine"]
    assert mine == {
        "enabled": True,
        "host": "h",
        "api_token": "**********",
        "password": "**********",
    }


@pytest.mark.parametrize("command", [["push", "acme_topic", "-p", "room=1"], ["server"]])
def test_a_pusher_node_no_transport_reads_is_an_unknown_key(
    tmp_path: Path, command: list[str]
) -> None:
    """`pushers.zmqq:` (a typo) stops push and server with one line listing the transports."""
    path = tmp_path / "c.yaml"
    path.write_text("gos_web_socket:\n  pushers:\n    zmqq: {port: 5555}\n")
    result = run(*command, "--config", str(path))
    assert one_config_error(result) == "unknown key pushers.zmqq (allowed: amqp, http, wamp, zmq)"


def test_a_config_error_is_reported_before_a_taken_port(tmp_path: Path) -> None:
    """`server` with a pushers typo and its port held by another socket: the typo is the one
    line (exit 2), not the port."""
    path = tmp_path / "c.yaml"
    path.write_text("gos_web_socket:\n  pushers:\n    zmqq: {port: 5555}\n")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = str(holder.getsockname()[1])
        result = run("server", "--config", str(path), "-p", port, "--host", "127.0.0.1")
    assert one_config_error(result) == "unknown key pushers.zmqq (allowed: amqp, http, wamp, zmq)"


def test_push_to_an_rpc_route_is_refused_with_the_topic_routes() -> None:
    """Issue 30 item 7: a push to a route whose callback is an RPC handler is one error line,
    not "pushed" (the server would drop it)."""
    result = run("push", "acme_rpc", "-p", "method=sum", "-d", "[1, 2]")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: route acme_rpc calls acme.rpc, an RPC handler: pushes reach topics only "
        "(routes to a topic: acme_topic, acme_user, acme_chat, acme_room)"
    ]


def test_push_with_an_unknown_parameter_lists_the_route_variables() -> None:
    """A ``-p`` the route has no variable for is refused, naming the allowed ones."""
    result = run("push", "acme_topic", "-p", "room=1", "-p", "nope=2", "-d", "{}")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: unknown parameter(s) nope for route acme_topic (allowed: room)"
    ]


@pytest.mark.parametrize("pusher", ["zmq", "wamp"])
def test_push_context_on_a_transport_that_ignores_it_is_refused(pusher: str) -> None:
    """``--context`` on ZeroMQ or WAMP (which drop it, as in GOS) is an error, not silence."""
    env = {"GOS_WEB_SOCKET__PUSHERS__WAMP__ENABLED": "true"}
    result = run(
        "push", "acme_topic", "-p", "room=1", "--pusher", pusher, "--context", '{"x": 1}',
        env=env,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: --context is ignored by the {pusher} pusher "
        "(allowed: a pusher that reads it, e.g. --pusher amqp)"
    ]


def test_the_light_push_targets_are_the_demo_classes() -> None:
    """The callbacks `push` checks without the server stack are the demo's own names."""
    from gos_web_socket.app.__main__ import DEMO_CALLBACKS
    from gos_web_socket.app.demo import AcmeRpc, AcmeTopic

    assert DEMO_CALLBACKS == {AcmeTopic.name: "topic", AcmeRpc.name: "rpc"}


def test_push_with_demo_off_and_no_topic_of_yours_is_refused() -> None:
    """``server.demo: false`` in the default container leaves no topic: a push says so."""
    result = run(
        "push", "acme_topic", "-p", "room=1", env={"GOS_WEB_SOCKET__SERVER__DEMO": "false"}
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: route acme_topic calls acme.topic, no topic: pushes reach topics only "
        "(routes to a topic: none)"
    ]


def test_routes_match_nowhere_is_one_line() -> None:
    """Issue 30 item 10: a channel no route matches prints the routing error alone."""
    result = run("routes", "--match", "nowhere/x")
    assert result.returncode == 1
    assert result.stderr.splitlines() == ['routing error: No routes found for "nowhere/x".']


@pytest.mark.parametrize(
    "variable",
    ["GOS_WEBSOCKET__SERVER__PORT", "GOS_WEB_SOCKET_SERVER__PORT", "gos_websocket__server__port"],
)
def test_a_setting_under_a_wrong_prefix_is_named_with_the_right_one(variable: str) -> None:
    """A variable one typo from the prefix is ignored (as before) with one warning naming the
    variable it should be."""
    result = run("config", env={variable: "1400"})
    assert result.returncode == 0
    assert "port: 1337" in result.stdout
    (line,) = result.stderr.splitlines()
    assert (
        f"environment variable {variable} ignored: settings variables start with "
        "GOS_WEB_SOCKET__ (did you mean GOS_WEB_SOCKET__SERVER__PORT?)"
    ) in line


def test_version_is_the_installed_distributions() -> None:
    """`gos-websocket --version` prints the version pyproject.toml gives, and exits 0."""
    from importlib.metadata import version

    result = run("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"gos-websocket {version('gos-web-socket')}\n"
    assert version("gos-web-socket") == "0.1.0"
