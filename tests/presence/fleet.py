"""A fleet of signed-in WAMP v1 clients in a process of its own, for the presence tests.

Reads one JSON line on stdin, ``{"plan": [[url, user], ...], "channel": C}``, opens one client per
entry, subscribes each to C, then prints ``{"ready": n}``. Afterwards each stdin line is a
command: ``report`` prints ``{"open": {user: open tabs}}``; ``close`` closes all and exits.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter

from gos_web_socket.app.testing import WampTestClient

CONCURRENCY = 50


async def main() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)  # the plan is one long line
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    order = json.loads(await reader.readline())
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(url: str, user: str) -> tuple[str, WampTestClient]:
        async with gate:
            client = await WampTestClient.connect(url, timeout=30.0)
            client.subscribe(order["channel"])
            return user, client

    clients = await asyncio.gather(*(one(url, user) for url, user in order["plan"]))
    print(json.dumps({"ready": len(clients)}), flush=True)
    while line := (await reader.readline()).strip():
        if line == b"report":
            open_tabs = Counter(user for user, client in clients if client.is_open)
            print(json.dumps({"open": open_tabs}), flush=True)
        elif line == b"close":
            break
    await asyncio.gather(*(client.close() for _, client in clients), return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(main())
