"""A mass reconnect on a presence channel: `python -m bench.presence_storm`.

One `gos-websocket server` process (``presence: true`` on ``acme/chat/{room}``, window 1 s),
``--watchers`` clients watching ``gos/presence/acme/chat/7`` from this process, and a fleet of
``--clients`` signed-in users in a child process that subscribe, all drop at once, and all come
back. Reported: the join/leave frames each watcher received (against the 2 x clients frames a
frame-per-change design sends each watcher over the drop and the return), the watchers' total,
and the server's CPU seconds over the drop and the return.

    python -m bench.presence_storm --clients 2000 --watchers 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

import jwt
import yaml

from bench.runner import free_port
from gos_web_socket.app.testing import WampTestClient

ROOM = "acme/chat/7"
WATCH = "gos/presence/" + ROOM
ROUTES = {"chat": {"pattern": "acme/chat/{room}", "callback": "acme.topic", "presence": True}}


def token(secret: str, user: str) -> str:
    return jwt.encode({"sub": user, "exp": int(time.time()) + 3600}, secret, "HS256")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def fleet(url: str, secret: str, count: int) -> None:
    """The child: ``count`` users subscribe; on ``drop`` all close, on ``back`` all return."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    gate = asyncio.Semaphore(100)

    async def one(user: int) -> WampTestClient:
        async with gate:
            client = await WampTestClient.connect(
                f"{url}?token={token(secret, f'u{user}')}", timeout=60
            )
            client.subscribe(ROOM)
            return client

    clients = await asyncio.gather(*(one(u) for u in range(count)))
    print("ready", flush=True)
    await reader.readline()  # drop
    for client in clients:
        client.abort()
    print("dropped", flush=True)
    await reader.readline()  # back
    clients = await asyncio.gather(*(one(u) for u in range(count)))
    print("back", flush=True)
    await reader.readline()
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


async def run(clients: int, watchers: int) -> dict[str, object]:
    secret = secrets.token_urlsafe(32)
    folder = Path(tempfile.mkdtemp(prefix="presence-storm-"))
    (folder / "routing.yaml").write_text(yaml.safe_dump(ROUTES))
    tree = {
        "server": {"router": {"resources": [str(folder / "routing.yaml")]}},
        "authentication": {
            "allow_anonymous": True,
            "providers": {"jwt": {"enabled": True, "algorithms": ["HS256"], "secret": secret}},
        },
    }
    (folder / "config.yaml").write_text(yaml.safe_dump({"gos_web_socket": tree}))
    port = free_port()
    env = {**os.environ, "GOS_WEB_SOCKET__SERVER__PORT": str(port)}
    env |= {"GOS_WEB_SOCKET__SERVER__HTTP__ENABLED": "false"}
    env |= {"GOS_WEB_SOCKET__SERVER__METRICS__ENABLED": "false"}
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gos_web_socket.app", "server",
        "--config", str(folder / "config.yaml"), env=env, stdin=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    url = f"ws://127.0.0.1:{port}/"
    try:
        for _ in range(200):
            try:
                probe = await WampTestClient.connect(url)
                await probe.close()
                break
            except OSError:
                await asyncio.sleep(0.1)
        eyes = [await WampTestClient.connect(url) for _ in range(watchers)]
        for eye in eyes:
            eye.subscribe(WATCH)
            await eye.next_event(WATCH)  # the state
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.presence_storm", "--fleet", url, secret, str(clients),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert child.stdin is not None and child.stdout is not None
        assert (await child.stdout.readline()).strip() == b"ready"
        await asyncio.sleep(2.5)  # the joins' diffs out
        before = [len(e.unread_events()) for e in eyes]  # the joins: not part of the storm
        cpu = cpu_seconds(server.pid)
        started = time.perf_counter()
        child.stdin.write(b"drop\n")
        await child.stdout.readline()
        child.stdin.write(b"back\n")
        await child.stdout.readline()
        storm = time.perf_counter() - started
        await asyncio.sleep(2.5)  # the last window out
        cpu = cpu_seconds(server.pid) - cpu
        frames = [len(e.unread_events()) - b for e, b in zip(eyes, before, strict=True)]
        child.stdin.write(b"end\n")
        await child.wait()
        for eye in eyes:
            await eye.close()
        return {
            "clients": clients,
            "watchers": watchers,
            "storm_s": round(storm, 2),
            "frames_per_watcher_max": max(frames),
            "frames_all_watchers": sum(frames),
            "frames_per_change_design": 2 * clients * watchers,
            "server_cpu_s": round(cpu, 2),
        }
    finally:
        server.terminate()
        await server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--watchers", type=int, default=20)
    parser.add_argument("--fleet", nargs=3, metavar=("URL", "SECRET", "COUNT"))
    args = parser.parse_args()
    if args.fleet:
        url, secret, count = args.fleet
        asyncio.run(fleet(url, secret, int(count)))
        return
    print(json.dumps(asyncio.run(run(args.clients, args.watchers)), indent=2))


if __name__ == "__main__":
    main()
