"""Well-behaved clients in a process of their own: ``python -m tests.hostile.subscribers ...``.

Arguments: HOST PORT CHANNEL COUNT. ``COUNT`` WAMP v1 clients subscribe to ``CHANNEL`` and
record, for every EVENT, the push number and the push-to-receive delay (pushes carry the
pusher's ``time.monotonic_ns()``; the clock is the same in every process of the machine). One
more client calls ``acme/rpc/sum`` every 100 ms and records each round trip: the "RPC probe".

Prints ``{"ready": COUNT}`` once every client is subscribed; then each stdin line ``collect``
prints what was received as one JSON line, and ``last`` the number of the last push each
client received (0: none) and how each was closed; EOF closes the clients and ends the process.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from tests.support.raw_ws import masked_frame, parse_frames, php_upgrade_request


class GoodClient:
    """One raw WAMP v1 client: WELCOME, SUBSCRIBE, then EVENTs and CALLRESULTs."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.events: list[tuple[int, int]] = []
        """(push number, push-to-receive ns) per EVENT."""
        self.results: asyncio.Queue[Any] = asyncio.Queue()
        self.closed_with: str = ""

    @classmethod
    async def connect(cls, host: str, port: int) -> GoodClient:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(php_upgrade_request(host, port))
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"handshake refused: {head[:80]!r}")
        return cls(reader, writer)

    def send(self, message: list[Any]) -> None:
        self.writer.write(masked_frame(json.dumps(message).encode()))

    async def run(self) -> None:
        rest = b""
        while True:
            data = await self.reader.read(65536)
            if not data:
                self.closed_with = self.closed_with or "eof"
                return
            now = time.monotonic_ns()
            frames, rest = parse_frames(rest + data)
            for frame in frames:
                if frame.opcode == 0x8:
                    self.closed_with = f"close {int.from_bytes(frame.payload[:2])}"
                    return
                message = json.loads(frame.payload)
                if message[0] == 8 and isinstance(message[2], dict) and "n" in message[2]:
                    self.events.append((message[2]["n"], now - message[2]["t"]))
                elif message[0] in (3, 4):
                    self.results.put_nowait(message)

    def last(self) -> int:
        """The number of the newest push received (0: none); they arrive in order."""
        return self.events[-1][0] if self.events else 0

    async def call(self, n: int) -> Any:
        self.send([2, str(n), "acme/rpc/sum", n, 1])
        return await self.results.get()


async def probe(client: GoodClient, rtts: list[tuple[int, int]]) -> None:
    """An RPC every 100 ms; (when it was sent, its round trip) of each, in ns."""
    n = 0
    while True:
        n += 1
        started = time.monotonic_ns()
        await client.call(n)
        rtts.append((started, time.monotonic_ns() - started))
        await asyncio.sleep(0.1)  # the probe's pace


class Reader(Protocol):
    closed_with: str

    def last(self) -> int:
        """The number of the newest push received (0: none)."""
        ...


async def serve(clients: Sequence[Reader], collect: Callable[[], dict[str, Any]]) -> None:
    """Say ready, then answer each stdin line until EOF: ``last`` with every client's last
    push and how it was closed, anything else with that and ``collect()``."""
    print(json.dumps({"ready": len(clients)}), flush=True)
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        report: dict[str, Any] = {"closed": [client.closed_with for client in clients]}
        if line.strip() == "last":
            report["last"] = [client.last() for client in clients]
        else:
            report |= collect()
        print(json.dumps(report), flush=True)


async def main(host: str, port: int, channel: str, count: int) -> None:
    clients = [await GoodClient.connect(host, port) for _ in range(count)]
    readers = [asyncio.create_task(client.run()) for client in clients]
    for client in clients:
        client.send([5, channel])
        await client.call(0)  # answered after the SUBSCRIBE before it: subscribed
    prober = await GoodClient.connect(host, port)
    readers.append(asyncio.create_task(prober.run()))
    rtts: list[tuple[int, int]] = []
    probing = asyncio.create_task(probe(prober, rtts))
    await serve(clients, lambda: {"events": [c.events for c in clients], "rpc_rtt": rtts})
    probing.cancel()
    for task in readers:
        task.cancel()
    for client in [*clients, prober]:
        client.writer.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])))
