"""What the transport modules load: the contract stays a stranger's small read."""

from __future__ import annotations

import subprocess
import sys

import pytest

FORBIDDEN = ("gos_web_socket.app.server", "gos_web_socket.app.history", "gos_web_socket.app.events")


def loaded_by(module: str) -> list[str]:
    """The package's modules a fresh interpreter has loaded after importing ``module``."""
    code = f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return [name for name in result.stdout.split() if name.startswith("gos_web_socket")]


@pytest.mark.parametrize(
    "module",
    [
        "gos_web_socket.app.transports.contract",
        "gos_web_socket.app.position",
        "gos_web_socket.app.push",
        "gos_web_socket.app.wamp_codes",
        "gos_web_socket.app.backoff",
    ],
)
def test_dependency_free_modules_load_no_server_history_or_events(module: str) -> None:
    loaded = loaded_by(module)
    assert [name for name in loaded if name.startswith(FORBIDDEN)] == []


def test_the_wamp_pusher_does_not_load_the_server() -> None:
    """It needs two WAMP v1 codes, which live in app/wamp_codes.py, not in the server."""
    loaded = loaded_by("gos_web_socket.app.transports.wamp")
    assert [name for name in loaded if name.startswith("gos_web_socket.app.server")] == []
