"""Issue 30 item 11: a configured JWT node is enabled as a pusher node is, and a server that
would refuse everyone does not start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gos_web_socket.app.auth import Authenticator
from gos_web_socket.app.exceptions import ConfigurationError
from gos_web_socket.settings import load_settings
from gos_web_socket.settings.auth import AuthenticationSettings
from tests.support.process import ROOT, server_env

SECRET = "0123456789abcdef0123456789abcdef"


def write(tmp_path: Path, jwt: str) -> Path:
    config = tmp_path / "gos.yaml"
    config.write_text(
        "gos_web_socket:\n  authentication:\n    allow_anonymous: false\n"
        f"    providers:\n      jwt: {jwt}\n"
    )
    return config


def test_a_jwt_node_in_the_file_is_enabled(tmp_path: Path) -> None:
    """`jwt: {secret: ...}` enables the provider; `enabled: false` still turns it off."""
    settings = load_settings(write(tmp_path, f"{{secret: {SECRET}}}"))
    assert settings.authentication.providers.jwt.enabled
    settings = load_settings(write(tmp_path, f"{{enabled: false, secret: {SECRET}}}"))
    assert not settings.authentication.providers.jwt.enabled


def test_a_jwt_node_without_its_key_is_one_config_line(tmp_path: Path) -> None:
    """Enabled by being written, a node without a secret is refused, naming the key."""
    with pytest.raises(ConfigurationError) as error:
        load_settings(write(tmp_path, "{algorithms: [HS256]}"))
    (line,) = error.value.problems
    assert "authentication.providers.jwt" in line and "secret is required" in line


def test_no_anonymous_and_no_provider_is_refused_at_start() -> None:
    """allow_anonymous false with nothing that could admit anyone: a ConfigurationError."""
    with pytest.raises(ConfigurationError, match="allow_anonymous: false with no enabled provider"):
        Authenticator.from_settings(AuthenticationSettings(allow_anonymous=False))
    assert Authenticator.from_settings(AuthenticationSettings()).providers == []


def test_the_server_command_says_it_in_one_line() -> None:
    """`gos-websocket server` with that configuration exits 2 with one config error line."""
    env = server_env(AUTHENTICATION__ALLOW_ANONYMOUS="false")
    done = subprocess.run(
        [sys.executable, "-m", "gos_web_socket.app", "server"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("config error")]
    assert errors == [
        "config error: authentication.allow_anonymous: false with no enabled provider refuses "
        "every connection (allowed: configure authentication.providers.jwt, add a provider to "
        "authentication_providers, or allow_anonymous: true)"
    ]
