"""Reading subscribers that recover, in a process of their own: ``python -m
tests.hostile.recovering HOST PORT CHANNEL COUNT [STALLERS]``.

``COUNT`` WAMP v2 clients on raw sockets subscribe to ``CHANNEL`` (a route with history) with
``_recover`` and read every EVENT (docs/streams.md). A client that is cut off reconnects at
once and subscribes again with the ``_position`` of the last EVENT it got: what the replay
brings, up to the ``_recovery`` report, counts as recovered, what comes after as live. The
first ``STALLERS`` clients stop reading for ``STALL`` seconds once they got push ``STALL_AT``,
so that the server cuts them off in a burst (the path the measure is for).

Speaks the stdin / stdout lines of tests/hostile/subscribers.py: ``{"ready": COUNT}``, then
``last`` and ``collect``; ``collect`` also gives per client the pushes recovered, the
cut-offs and the recovery reports.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from tests.hostile.subscribers import serve
from tests.support.raw_ws import masked_frame, parse_frames, php_upgrade_request

HELLO = [1, "realm1", {"roles": {"subscriber": {}}}]
WELCOME, SUBSCRIBE, SUBSCRIBED, EVENT = 2, 32, 33, 36
STALL_AT = 2_000
STALL = 4.0
"""Seconds a staller reads nothing: twice ``server.slow_reader_timeout`` (2 s by default)."""
RECONNECTS = 50
"""Reconnects a client makes at most before it gives up (it records ``gave up``)."""


class RecoveringClient:
    """One v2 subscriber that comes back with its last position whenever it is cut off."""

    def __init__(self, host: str, port: int, channel: str, stalls: bool) -> None:
        self.host, self.port, self.channel = host, port, channel
        self.stalls = stalls
        self.events: list[tuple[int, int]] = []
        """(push number, push-to-receive ns) of each push got, live or recovered, once."""
        self.seen: set[int] = set()
        self.recovered = 0
        self.cut_offs = 0
        self.reports: list[dict[str, Any]] = []
        self.position: Any = True
        """``_recover`` of the next SUBSCRIBE: the last ``_position`` (True: none yet)."""
        self.closed_with = ""
        self.subscribed = asyncio.Event()

    def last(self) -> int:
        """The number of the newest push received (0: none); a replay brings older ones."""
        return max(self.seen, default=0)

    async def _join(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        request = php_upgrade_request(self.host, self.port)
        writer.write(request.replace(b"Protocol: wamp\r", b"Protocol: wamp.2.json\r"))
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"handshake refused: {head[:80]!r}")
        writer.write(masked_frame(json.dumps(HELLO).encode()))
        message = [SUBSCRIBE, 1, {"_recover": self.position}, self.channel]
        writer.write(masked_frame(json.dumps(message).encode()))
        return reader, writer

    async def run(self) -> None:
        """Read until the process ends; reconnect after each cut-off."""
        for _ in range(RECONNECTS):
            reader, self.writer = await self._join()
            await self._read(reader)
            self.writer.close()
            self.cut_offs += 1
        self.closed_with = "gave up"

    async def _read(self, reader: asyncio.StreamReader) -> None:
        rest, replaying = b"", True
        while True:
            try:
                data = await reader.read(65536)
            except ConnectionError:
                data = b""
            if not data:
                return
            now = time.monotonic_ns()
            frames, rest = parse_frames(rest + data)
            for frame in frames:
                if frame.opcode == 0x8:
                    return
                message = json.loads(frame.payload)
                if message[0] == SUBSCRIBED:
                    self.subscribed.set()
                elif message[0] == EVENT:
                    replaying = self._event(message, now, replaying)
            if self.stalls and len(self.seen) >= STALL_AT:
                self.stalls = False
                await asyncio.sleep(STALL)  # the attack: a reader that stops reading a while

    def _event(self, message: list[Any], now: int, replaying: bool) -> bool:
        """Count one EVENT; returns whether the replay goes on (until the report)."""
        details = message[3]
        if "_recovery" in details:
            self.reports.append(details["_recovery"])
            return False
        self.position = details["_position"]
        payload = message[4][0]
        n = payload["n"]
        if n not in self.seen:
            self.seen.add(n)
            self.events.append((n, now - payload["t"]))
            self.recovered += replaying and self.cut_offs > 0
        return replaying


async def main(host: str, port: int, channel: str, count: int, stallers: int) -> None:
    clients = [RecoveringClient(host, port, channel, n < stallers) for n in range(count)]
    readers = [asyncio.create_task(client.run()) for client in clients]
    for client in clients:
        await asyncio.wait_for(client.subscribed.wait(), 30)

    def collect() -> dict[str, Any]:
        return {
            "events": [client.events for client in clients],
            "recovered": [client.recovered for client in clients],
            "cut_offs": [client.cut_offs for client in clients],
            "reports": [client.reports for client in clients],
        }

    await serve(clients, collect)
    for task in readers:
        task.cancel()


if __name__ == "__main__":
    host, port, channel, count, *rest = sys.argv[1:]
    asyncio.run(main(host, int(port), channel, int(count), int(rest[0]) if rest else 0))
