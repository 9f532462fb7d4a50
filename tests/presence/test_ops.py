"""Presence for operators: ``GET /presence?channel=`` on the ops listener and the CLI command."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from gos_web_socket.app.http_client import get as http_get
from tests.presence.conftest import presence_server
from tests.support.server import service
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
ROOM = "acme/chat/7"
METRICS = {"enabled": True, "host": "127.0.0.1", "port": 0}


async def test_ops_listener_and_cli_answer_the_members() -> None:
    """The ops listener and `gos-websocket presence CHANNEL` list the users; no channel is 400."""
    async with presence_server(metrics=METRICS) as node:
        port = service(node.container, "gos_web_socket.ops").port
        for user in ("42", "42", "43"):
            (await node.client(user)).subscribe(ROOM)
        await eventually(lambda: node.presence.counts(ROOM) == (3, 2))
        status, body = await http_get("127.0.0.1", port, "/presence?channel=acme%2Fchat%2F7", 5.0)
        found = json.loads(body)
        assert status == 200 and found["num_users"] == 2 and found["num_clients"] == 3
        status, body = await http_get("127.0.0.1", port, "/presence", 5.0)
        assert status == 400 and "channel" in json.loads(body)["error"]
        command = [sys.executable, "-m", "gos_web_socket.app", "presence", ROOM]
        result = await asyncio.to_thread(
            subprocess.run,
            [*command, "-a", "127.0.0.1", "-p", str(port)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        printed = json.loads(result.stdout)
        assert printed["users"]["42"]["connections"] == 2 and "43" in printed["users"]
