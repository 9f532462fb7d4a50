"""Slow readers against the server's memory: ``python -m tests.hostile.slow_readers [MODE]``.

A real server process with its default settings; ``READERS`` subscribers that read (the
process of tests/hostile/subscribers.py) and ``SLOW`` that subscribe and never read again
(raw sockets here, reads paused); ``PUSHES`` pushes of 1 KiB through the ZeroMQ pusher, paced
at ``RATE`` per second (``paced``) or as fast as the pusher goes (``burst``). Measured: server
RSS after the clients joined (base), its peak (sampled every 10 ms, and the kernel's
``VmHWM``), and after the slow readers are gone; what the reading subscribers lost and which
of them were cut off; the slow readers cut off; how long the pusher took (pushes wait while
the queued bytes are over half ``max_outgoing_total``). Prints one JSON line per mode.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from gos_web_socket.app.router import Router, load_routes
from gos_web_socket.app.transports.zmq import ZmqPusher
from gos_web_socket.settings.models import DEFAULT_ROUTING, ServerSettings, ZmqSettings
from tests.hostile.harness import MiB, _Child, rss
from tests.ops.conftest import scrape
from tests.support.process import ServerProcess, server_env, setting
from tests.support.raw_ws import masked_frame, php_upgrade_request

ROOM = "slow"
CHANNEL = f"acme/channel/{ROOM}"
READERS = 50
SLOW = 100
PUSHES = 20_000
RATE = 2_000
PAD = "x" * 990
"""A push's data is about 1 KiB with its number and time."""
SETTLE = 2.0
"""Seconds, once the server wrote its last frame, for the readers to read it."""


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
    slow_cut_off: int = 0
    max_outgoing_total_mib: float = 0.0


async def never_read(host: str, port: int) -> asyncio.StreamWriter:
    """A subscriber that reads its handshake's answer and then nothing: its reads pause."""
    reader, writer = await asyncio.open_connection(host, port, limit=4096)
    writer.write(php_upgrade_request(host, port))
    await reader.readuntil(b"\r\n\r\n")
    writer.write(masked_frame(json.dumps([5, CHANNEL]).encode()))
    await writer.drain()
    return writer


async def run(mode: str, slow_count: int = SLOW) -> Result:
    """One run of ``mode`` (``paced`` or ``burst``) on a fresh server process, with
    ``slow_count`` subscribers that never read beside the ``READERS`` that do."""
    env = server_env(SERVER__HTTP__ENABLED="false", LOGGING__RATE_LIMIT__BURST=0)
    server = await ServerProcess(env).start()
    result = Result(mode, slow=slow_count)
    try:
        probe = await server.connect()
        await probe.close()
        assert server.process is not None
        pid = server.process.pid
        host, port = "127.0.0.1", int(setting(env, "SERVER__PORT"))
        readers = await _Child.start("tests.hostile.subscribers", host, port, CHANNEL, READERS)
        try:
            await readers.ask(timeout=60)
            slow = [await never_read(host, port) for _ in range(slow_count)]
            await asyncio.sleep(0.5)  # their SUBSCRIBEs are handled
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
            await asyncio.sleep(SETTLE)
            report = await readers.ask("collect")
            for writer in slow:
                writer.close()
            await asyncio.sleep(2.0)  # the slow readers are gone, their memory handed back
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


def _keep_log(path: Path, text: str) -> None:
    path.write_text(text)


async def _push(pusher: ZmqPusher, paced: bool) -> None:
    loop = asyncio.get_running_loop()
    first = loop.time()
    for n in range(1, PUSHES + 1):
        data = {"n": n, "t": time.monotonic_ns(), "pad": PAD}
        await pusher.push(data, "acme_topic", {"room": ROOM})
        if paced:
            await asyncio.sleep(max(0.0, first + n / RATE - loop.time()))


async def _sample(pid: int, peak: list[int]) -> None:
    while True:
        peak[0] = max(peak[0], rss(pid))
        await asyncio.sleep(0.01)


async def _quiet(server: ServerProcess, within: float = 120.0) -> None:
    """Return once the server wrote no frame for a second (the pushes queued went out)."""
    loop = asyncio.get_running_loop()
    deadline, last = loop.time() + within, -1
    while loop.time() < deadline:
        sent = int((await scrape(server.metrics_port))["gos_websocket_frames_sent_total"])
        if sent == last:
            return
        last = sent
        await asyncio.sleep(1.0)


async def _cut_off(server: ServerProcess) -> int:
    return int((await scrape(server.metrics_port))["gos_websocket_clients_cut_off_total"])


async def main(modes: list[str]) -> None:
    """Each of ``modes``: ``paced``, ``burst``, or ``burst-no-slow`` (the readers alone)."""
    for mode in modes:
        name, _, variant = mode.partition("-")
        result = await run(name, 0 if variant == "no-slow" else SLOW)
        print(json.dumps(asdict(result)), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:] or ["paced", "burst", "burst-no-slow"]))
