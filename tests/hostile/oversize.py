"""Issue 24's size figures on a real `gos-websocket server` process with the default limits.

``python -m tests.hostile.oversize`` prints them; ``tests/hostile/test_oversize.py`` asserts them:

- a 5 MB push through the ZeroMQ pusher (built by ``gos_web_socket.push`` from the same
  settings): ``PushFailed`` at the pusher, naming the limit and the setting;
- ``FOREIGN`` frames of 5 MB from a foreign ZeroMQ peer: how many the server counted
  (``pushes_oversize_total`` on /metrics) and how many warning lines it logged for them;
- that a normal push after all of them still reaches a subscriber.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import zmq
import zmq.asyncio

from gos_web_socket.app.exceptions import PushFailed
from gos_web_socket.push import create_pushers
from tests.ops.conftest import scrape
from tests.support.process import ServerProcess, server_env, setting

ROOM = "oversize"
CHANNEL = f"acme/channel/{ROOM}"
SIZE = 5_000_000
FOREIGN = 5
OVERSIZE = 'gos_websocket_pushes_oversize_total{handler="zmq",transport="zmq"}'
DROP_LINE = "dropped a push of"


@dataclass
class OversizeFigures:
    pusher_error: str
    """The ``PushFailed`` message of the 5 MB push ('' if it was taken)."""
    pusher_seconds: float
    foreign_sent: int
    counted: float
    """``pushes_oversize_total`` after the foreign frames."""
    log_lines: int
    """Warning lines about them in the server's log."""
    delivered_after: bool


def envelope(size: int) -> bytes:
    return b'{"topic":"%s","data":"%s"}' % (CHANNEL.encode(), b"x" * size)


async def measure() -> OversizeFigures:
    """Run the three steps against a fresh server process (default limits)."""
    server = await ServerProcess(server_env()).start()
    context = zmq.asyncio.Context()
    port = setting(server.env, "PUSHERS__ZMQ__PORT")
    pushers = create_pushers(pushers={"zmq": {"port": int(port)}})
    pusher = pushers.zmq()
    try:
        subscriber = await server.subscriber(CHANNEL)
        started = time.perf_counter()
        error = ""
        try:
            await pusher.push("x" * SIZE, "acme_topic", {"room": ROOM})
        except PushFailed as exc:
            error = str(exc)
        took = time.perf_counter() - started

        sock = context.socket(zmq.PUSH)
        sock.setsockopt(zmq.LINGER, 5000)
        sock.connect(f"tcp://127.0.0.1:{port}")
        for _ in range(FOREIGN):
            await sock.send(envelope(SIZE))
        counted = 0.0
        deadline = time.monotonic() + 20
        while counted < FOREIGN and time.monotonic() < deadline:
            counted = (await scrape(server.metrics_port)).get(OVERSIZE, 0.0)
            await asyncio.sleep(0.1)  # between two scrapes of /metrics
        sock.close()

        await pusher.push({"after": True}, "acme_topic", {"room": ROOM})
        try:
            delivered = await subscriber.next_event(CHANNEL, timeout=5) == {"after": True}
        except TimeoutError:
            delivered = False
        await subscriber.close()
        lines = sum(1 for line in server.output.splitlines() if DROP_LINE in line)
        return OversizeFigures(error, took, FOREIGN, counted, lines, delivered)
    finally:
        await pusher.close()
        context.destroy(linger=0)
        await server.stop()


def main() -> None:
    figures = asyncio.run(measure())
    error = figures.pusher_error or "(none: the push was taken)"
    print(f"5 MB push through the ZeroMQ pusher, default limits ({figures.pusher_seconds:.3f} s):")
    print(f"  PushFailed: {error}")
    print(
        f"{figures.foreign_sent} foreign 5 MB frames: counted {figures.counted:.0f} "
        f"(pushes_oversize_total), {figures.log_lines} warning line(s) in the server log"
    )
    print(f"a normal push afterwards reached its subscriber: {figures.delivered_after}")


if __name__ == "__main__":
    main()
