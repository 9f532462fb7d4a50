"""Mass reconnect with recovery: N clients cut off by a server restart while pushes go out.

``python -m bench --scenarios recovery``: our server in ``queue_mode: stream`` with history on
the channel, N WAMP v2 subscribers (picows, ``RecoveryFleet``) that keep each EVENT's position.
While a pusher sends 1,000 pushes at a fixed rate the server process is stopped and a new one
started (same node name: it resumes after its offset and refills history); the clients then
reconnect with their last position. The case reports how many pushes any client lacks or got
twice, how many recoveries were incomplete, and how long from the new server's start until every
client had every push.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from bench.agent import Agent, Child, call_all
from bench.wire import CHANNEL

HELLO = json.dumps([1, "realm1", {"roles": {"subscriber": {}}}]).encode()


class Recovering(WSListener):  # type: ignore[misc]
    """One v2 subscriber: joins, subscribes with ``_recover``, records every seq it gets."""

    def __init__(self, owner: RecoveringClient) -> None:
        self.owner = owner

    def on_ws_connected(self, transport: WSTransport) -> None:
        transport.send(WSMsgType.TEXT, HELLO)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.owner.connected = False
        self.owner.fleet.lost(self.owner)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type != WSMsgType.TEXT:
            return
        message = json.loads(frame.get_payload_as_bytes())
        owner = self.owner
        kind = message[0]
        if kind == 2:  # WELCOME
            since: Any = owner.position if owner.position is not None else True
            options = json.dumps([32, 1, {"_recover": since}, CHANNEL]).encode()
            transport.send(WSMsgType.TEXT, options)
        elif kind == 33:
            owner.subscription = message[2]
        elif kind == 36 and message[1] == owner.subscription:
            details = message[3]
            if "_recovery" in details:
                report = details["_recovery"]
                owner.reports.append(bool(report["recovered"]))
                at, last = report["position"], owner.position
                newer = at and (not last or at["epoch"] != last["epoch"])
                if newer or (at and last and at["offset"] > last["offset"]):
                    owner.position = at  # forward only, as the shipped client does
                return
            position = details.get("_position")
            if position is not None:
                last = owner.position
                if (
                    last
                    and last["epoch"] == position["epoch"]
                    and position["offset"] <= last["offset"]
                ):
                    owner.dropped += 1  # had it already (the client's own dedup)
                    return
                owner.position = position
            seq = message[4][0]["seq"]
            if seq >= 0:
                owner.seen[seq] = owner.seen.get(seq, 0) + 1


class RecoveringClient:
    def __init__(self, fleet: RecoveryFleet) -> None:
        self.fleet = fleet
        self.position: dict[str, Any] | None = None
        self.subscription: int | None = None
        self.connected = False
        self.seen: dict[int, int] = {}
        self.reports: list[bool] = []
        self.dropped = 0
        self.reconnects = 0


class RecoveryFleet(Agent):
    """Recovering v2 clients in one process, on the parent's command."""

    def __init__(self) -> None:
        self.clients: list[RecoveringClient] = []
        self.transports: list[WSTransport] = []
        self.url = ""
        """Where a lost client reconnects by itself (as the browser client does); "": not."""
        self._lost: set[RecoveringClient] = set()
        self._task: asyncio.Task[None] | None = None

    def lost(self, client: RecoveringClient) -> None:
        if self.url:
            self._lost.add(client)
            if self._task is None or self._task.done():
                self._task = asyncio.get_running_loop().create_task(self._reconnect_lost())

    async def _reconnect_lost(self) -> None:
        """Reconnect clients the server dropped (cut off while slow), half a second later."""
        while self._lost:
            await asyncio.sleep(0.5)
            batch, self._lost = list(self._lost), set()
            for client in batch:
                client.reconnects += 1
            try:
                await self._open(self.url, batch, 100)
            except RuntimeError:
                self._lost.update(c for c in batch if not c.connected)

    async def _open(self, url: str, clients: list[RecoveringClient], parallel: int) -> None:
        gate = asyncio.Semaphore(parallel)
        headers = {"Sec-WebSocket-Protocol": "wamp.2.json"}

        async def one(client: RecoveringClient) -> None:
            async with gate:
                client.subscription = None
                transport, _ = await ws_connect(
                    lambda: Recovering(client), url, extra_headers=headers
                )
                client.connected = True
                self.transports.append(transport)

        results = await asyncio.gather(*(one(c) for c in clients), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors and self.url:  # the automatic reconnect tries them again
            self._lost.update(c for c in clients if not c.connected)
        elif errors:
            raise RuntimeError(f"{len(errors)} of {len(clients)} connections failed: {errors[0]!r}")

    async def do_connect(self, url: str, n: int, parallel: int = 50) -> int:
        """Open ``n`` clients; return how many got their first recovery report."""
        new = [RecoveringClient(self) for _ in range(n)]
        self.clients += new
        await self._open(url, new, parallel)
        for _ in range(600):
            if all(c.reports for c in new):
                break
            await asyncio.sleep(0.05)
        return sum(bool(c.reports) for c in new)

    async def do_open(self) -> int:
        return sum(c.connected for c in self.clients)

    async def do_reconnect(self, url: str, parallel: int = 100) -> int:
        """Reconnect every client with its last position; return how many are connected.
        From now on a client the server drops reconnects by itself."""
        self.transports.clear()
        self.url = url
        await self._open(url, self.clients, parallel)
        return sum(c.connected for c in self.clients)

    async def do_complete(self, count: int) -> int:
        """Clients that have every seq 0..count-1."""
        return sum(len(c.seen) >= count for c in self.clients)

    async def do_summary(self, count: int) -> dict[str, int]:
        missing = [count - sum(1 for s in c.seen if s < count) for c in self.clients]
        twice = [sum(n - 1 for n in c.seen.values()) for c in self.clients]
        return {
            "clients": len(self.clients),
            "max_missing": max(missing, default=0),
            "clients_missing": sum(m > 0 for m in missing),
            "duplicates": sum(twice),
            "incomplete": sum(not c.reports[-1] for c in self.clients if c.reports),
            "dropped_by_client": sum(c.dropped for c in self.clients),
            "reconnects": sum(c.reconnects for c in self.clients),
            "missing_seqs": sorted(
                {s for c in self.clients for s in range(count) if s not in c.seen}
            )[:50],
        }

    async def close(self) -> None:
        self.url = ""
        if self._task is not None:
            self._task.cancel()
        for transport in self.transports:
            transport.disconnect()
        await asyncio.sleep(0.1)


def recovery_case(
    broker: str, n: int = 5000, pushes: int = 1000, rate: float = 200.0, new_node: bool = False
) -> dict[str, Any]:
    """Restart the server while ``pushes`` go out at ``rate``; time until all N have them all.

    ``new_node``: the server started in its place is another node (another ``node_name``, no
    fill): it starts at the stream's end, so it never saw what was pushed while the clients
    were away and serves their recoveries by reading the stream back (``Backfill``).
    """
    from bench.runner import fleets_for, split

    tag = uuid.uuid4().hex[:8]
    kwargs: dict[str, Any] = {"transport": "stream", "amqp_url": broker, "zmq_port": 0, "tag": tag}
    children: list[Child] = []

    def child(kind: str, **extra: Any) -> Child:
        made = Child(kind, **extra)
        children.append(made)
        return made

    try:
        server = child("ours_server", history=True, **kwargs)
        port = server.call("start", timeout=60)
        fleets = [child("recovery_fleet") for _ in range(fleets_for(n))]
        url = f"ws://127.0.0.1:{port}/"
        ready = sum(call_all(fleets, "connect", [(url, k) for k in split(n, len(fleets))], 180))
        if ready != n:
            raise RuntimeError(f"recovery: {ready}/{n} subscribed")
        pusher = child("ours_pusher", **kwargs)
        pusher.call("start", timeout=60)
        pusher.send("rate", rate, pushes / rate)
        time.sleep(pushes / rate / 4)  # a quarter of the pushes went out live
        t_stop = time.monotonic()
        server.stop()
        other = {"node_name": f"bench-{tag}-new", "fill": 0} if new_node else None
        server = child("ours_server", history=True, stream=other, **kwargs)
        port = server.call("start", timeout=60)
        t_up = time.monotonic()
        url = f"ws://127.0.0.1:{port}/"
        reconnected = sum(call_all(fleets, "reconnect", [(url,)] * len(fleets), 180))
        t_reconnected = time.monotonic()
        offered = pusher.result("rate", timeout=pushes / rate + 120)
        t_pushed = time.monotonic()
        deadline = time.monotonic() + 120
        while True:
            complete = sum(call_all(fleets, "complete", [(pushes,)] * len(fleets), 30))
            if complete >= n or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        t_done = time.monotonic()
        summaries = call_all(fleets, "summary", [(pushes,)] * len(fleets), 60)
        history = server.call("history", timeout=30)
        return {
            "scenario": "new_node_recovery" if new_node else "restart_recovery",
            "system": "ours",
            "transport": "stream",
            "n": n,
            "pushes": offered["sent"],
            "reconnected": reconnected,
            "complete_clients": complete,
            "max_missing": max(s["max_missing"] for s in summaries),
            "clients_missing": sum(s["clients_missing"] for s in summaries),
            "duplicates": sum(s["duplicates"] for s in summaries),
            "incomplete_recoveries": sum(s["incomplete"] for s in summaries),
            "dropped_by_client": sum(s["dropped_by_client"] for s in summaries),
            "lost_and_reconnected": sum(s["reconnects"] for s in summaries),
            "missing_seqs": sorted({x for s in summaries for x in s["missing_seqs"]})[:50],
            **{f"server_{key}": value for key, value in history.items()},
            "down_s": round(t_up - t_stop, 3),
            "reconnect_s": round(t_reconnected - t_up, 3),
            "all_recovered_after_restart_s": round(t_done - t_up, 3),
            "all_recovered_after_last_push_s": round(max(0.0, t_done - t_pushed), 3),
        }
    finally:
        for made in reversed(children):
            made.stop()
