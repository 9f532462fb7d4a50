"""The third-party npm ``wamp1`` client (Node) against our server."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from gos_web_socket.app.server import WampServer
from tests.support.server import url_of

INTEROP = Path(__file__).resolve().parents[1] / "interop"
pytestmark = pytest.mark.npm


async def test_npm_wamp1_client(demo_server: WampServer) -> None:
    """wamp1 gets WELCOME, CALLs through a CURIE prefix, subscribes and receives an EVENT."""
    if not (INTEROP / "node_modules" / "wamp1").is_dir():
        pytest.fail(
            "tests/interop/node_modules is missing: run make test, it installs npm packages"
        )
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed; the interop tests need Node 20")
    process = await asyncio.create_subprocess_exec(
        node,
        str(INTEROP / "wamp1_client.js"),
        url_of(demo_server),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 0, (stdout + stderr).decode()
    results = json.loads(stdout.decode().strip().splitlines()[-1])
    welcome = results["welcome"]  # wamp1 hands over {sessionId, version, server}
    assert welcome["version"] == 1 and welcome["sessionId"] == results["sessionId"] != ""
    assert results["sum"] == [5]
    assert results["event"] == {"from": "wamp1"}
