"""Slow readers against the server's memory: ``python -m tests.hostile.slow_readers [MODE]``.

A real server process with its default settings; ``READERS`` subscribers that read (the
process of tests/hostile/subscribers.py) and ``SLOW`` that subscribe and never read again
(raw sockets here, reads paused); ``PUSHES`` pushes of 1 KiB through the ZeroMQ pusher, paced
at ``RATE`` per second (``paced``) or as fast as the pusher goes (``burst``). Measured: server
RSS after the clients joined (base), its peak (sampled every 10 ms, and the kernel's
``VmHWM``), and after the slow readers are gone; what the reading subscribers lost and which
of them were cut off; the slow readers cut off; how long the pusher took (pushes wait while
the queued bytes are over half ``max_outgoing_total``). Prints one JSON line per mode.

``-history`` after a mode (``burst-history``): the channel's route keeps ``PUSHES`` pushes of
history and the readers are WAMP v2 clients that recover (tests/hostile/recovering.py):
``STALLERS`` of them stop reading for a while so that the burst cuts them off, and each reader
cut off reconnects and recovers what it missed. Then "lost" is what a reader got neither live
nor by recovery, and the result counts the pushes recovered and the readers' reconnects.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from gos_web_socket.app.router import Router, load_routes
from gos_web_socket.app.transports.zmq.pusher import ZmqPusher
from gos_web_socket.settings.models import DEFAULT_ROUTING, ServerSettings, ZmqSettings
from tests.hostile.harness import MiB, _Child, _wait_sessions, received, rss, start_server
from tests.ops.conftest import scrape
from tests.support.process import ServerProcess, setting
from tests.support.raw_ws import masked_frame, parse_frames, php_upgrade_request

ROOM = "slow"
CHANNEL = f"acme/channel/{ROOM}"
READERS = 50
SLOW = 100
PUSHES = 20_000
RATE = 2_000
PAD = "x" * 990
"""A push's data is about 1 KiB with its number and time."""
STALLERS = 10
"""Readers that stop reading a while in a ``-history`` run (to be cut off, then recover)."""


@dataclass
class Result:
    mode: str
    slow: int
    rss_base_mib: float = 0.0
    rss_peak_mib: float = 0.0
    hwm_mib: float = 0.0
    rss_after_mib: float = 0.0
    push_seconds: float = 0.0
    readers_lost: int = 0
    readers_cut_off: int = 0
    readers_recovered: int = 0
    """Pushes the readers got by recovery after a cut-off (``-history``)."""
    incomplete_recoveries: int = 0
    """Recovery reports after a cut-off that said ``recovered: false`` (``-history``)."""
    slow_cut_off: int = 0
    max_outgoing_total_mib: float = 0.0


async def never_read(host: str, port: int) -> asyncio.StreamWriter:
    """A subscriber that reads until its SUBSCRIBE was handled (a CALL answered after it)
    and then nothing: its reads pause."""
    reader, writer = await asyncio.open_connection(host, port, limit=4096)
    writer.write(php_upgrade_request(host, port))
    await reader.readuntil(b"\r\n\r\n")
    writer.write(masked_frame(json.dumps([5, CHANNEL]).encode()))
    writer.write(masked_frame(json.dumps([2, "subscribed", "acme/rpc/sum", 1, 1]).encode()))
    rest = b""
    while True:
        frames, rest = parse_frames(rest + await reader.read(4096))
        if any(frame.payload.startswith(b"[3,") for frame in frames):  # CALLRESULT
            return writer


def history_routing(directory: str) -> str:
    """A routing file: the default routes, the channel's keeping ``PUSHES`` pushes."""
    routes: dict[str, Any] = yaml.safe_load(Path(DEFAULT_ROUTING).read_text())
    routes["acme_topic"]["history"] = {"size": PUSHES, "ttl": 300}
    path = Path(directory) / "routing.yaml"
    path.write_text(yaml.safe_dump(routes))
    return json.dumps([str(path)])


async def run(mode: str, slow_count: int = SLOW, history: bool = False) -> Result:
    """One run of ``mode`` (``paced`` or ``burst``) on a fresh server process, with
    ``slow_count`` subscribers that never read beside the ``READERS`` that do (v2 readers
    that recover on a route with history when ``history``)."""
    directory = tempfile.mkdtemp(prefix="slow_readers_")
    routing = {"SERVER__ROUTER__RESOURCES": history_routing(directory)} if history else {}
    server, pid = await start_server(**routing)
    result = Result(mode + "-history" * history, slow=slow_count)
    try:
        env = server.env
        host, port = "127.0.0.1", int(setting(env, "SERVER__PORT"))
        if history:
            readers = await _Child.start(
                "tests.hostile.recovering", host, port, CHANNEL, READERS, STALLERS
            )
        else:
            readers = await _Child.start("tests.hostile.subscribers", host, port, CHANNEL, READERS)
        try:
            await readers.ask(timeout=60)
            slow = [await never_read(host, port) for _ in range(slow_count)]
            result.rss_base_mib = rss(pid) / MiB
            zmq = ZmqSettings(port=int(setting(env, "PUSHERS__ZMQ__PORT")), send_timeout=60)
            pusher = ZmqPusher(zmq, Router(load_routes(DEFAULT_ROUTING)))
            peak = [0]
            sampling = asyncio.create_task(_sample(pid, peak))
            started = time.monotonic()
            try:
                await _push(pusher, paced=mode == "paced")
            finally:
                await pusher.close()
            result.push_seconds = round(time.monotonic() - started, 2)
            await _quiet(server)
            await received(readers, PUSHES, within=60)
            report = await readers.ask("collect")
            for writer in slow:
                writer.close()
            await _wait_sessions(server, within=10, down_to=READERS + 1)
            await _rss_down_to(pid, result.rss_base_mib * MiB * 1.2, within=5)
            sampling.cancel()
            result.rss_peak_mib = peak[0] / MiB
            result.hwm_mib = rss(pid, "VmHWM") / MiB
            result.rss_after_mib = rss(pid) / MiB
        finally:
            await readers.stop()
        for events, closed in zip(report["events"], report["closed"], strict=True):
            got = {n for n, _ in events}
            result.readers_lost += sum(1 for n in range(1, PUSHES + 1) if n not in got)
            result.readers_cut_off += bool(closed)
        if history:
            _count_recoveries(result, report)
        result.slow_cut_off = await _cut_off(server) - result.readers_cut_off
        result.max_outgoing_total_mib = ServerSettings().max_outgoing_total / MiB
        if os.environ.get("SLOW_READERS_LOG"):  # the server's log, to read the cut-offs
            _keep_log(Path(os.environ["SLOW_READERS_LOG"]), server.output)
        return result
    except Exception:
        print(server.output[-3000:], file=sys.stderr)
        raise
    finally:
        await server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def _keep_log(path: Path, text: str) -> None:
    path.write_text(text)


def _count_recoveries(result: Result, report: dict[str, Any]) -> None:
    """Readers that recover are cut off and come back: count that, not a final close."""
    result.readers_cut_off = sum(report["cut_offs"])
    result.readers_recovered = sum(report["recovered"])
    result.incomplete_recoveries = sum(
        not r["recovered"] for reports in report["reports"] for r in reports[1:]
    )


async def _rss_down_to(pid: int, mark: float, within: float) -> None:
    """Return once the server's RSS is at most ``mark`` bytes, or after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        if rss(pid) <= mark or loop.time() > deadline:
            return
        await asyncio.sleep(0.05)  # between two reads of /proc


async def _push(pusher: ZmqPusher, paced: bool) -> None:
    loop = asyncio.get_running_loop()
    first = loop.time()
    for n in range(1, PUSHES + 1):
        data = {"n": n, "t": time.monotonic_ns(), "pad": PAD}
        await pusher.push(data, "acme_topic", {"room": ROOM})
        if paced:
            await asyncio.sleep(max(0.0, first + n / RATE - loop.time()))  # the pace: RATE/s


async def _sample(pid: int, peak: list[int]) -> None:
    while True:
        peak[0] = max(peak[0], rss(pid))
        await asyncio.sleep(0.01)  # the sampling period


async def _quiet(server: ServerProcess, within: float = 120.0) -> None:
    """Return once the server wrote no frame for a second (the pushes queued went out)."""
    loop = asyncio.get_running_loop()
    deadline, last = loop.time() + within, -1
    while loop.time() < deadline:
        sent = int((await scrape(server.metrics_port))["gos_websocket_frames_sent_total"])
        if sent == last:
            return
        last = sent
        await asyncio.sleep(1.0)  # what "quiet" means: no frame written for this long


async def _cut_off(server: ServerProcess) -> int:
    return int((await scrape(server.metrics_port))["gos_websocket_clients_cut_off_total"])


async def main(modes: list[str]) -> None:
    """Each of ``modes``: ``paced``, ``burst``, ``burst-no-slow`` (the readers alone), or
    one of these with ``-history`` (readers that recover, some of them cut off)."""
    for mode in modes:
        name, _, variant = mode.partition("-")
        slow = 0 if "no-slow" in variant else SLOW
        result = await run(name, slow, history=variant.endswith("history"))
        print(json.dumps(asdict(result)), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:] or ["paced", "burst", "burst-no-slow"]))
