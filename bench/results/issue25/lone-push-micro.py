"""The Python cost of a lone push per subscriber: a real Topic, FlushScheduler and 16,000
Outputs over transports that write nothing (bench/results/issue25/README.md, section 6).

``python lone-push-micro.py bound`` on this checkout; ``PYTHONPATH=DIR python lone-push-micro.py
method`` on another copy of the package (``DIR/gos_web_socket``) whose connection's
``write_now`` is a method in front of ``Output.write_now`` (main before session 8).
"""

import asyncio
import sys
import time
from typing import Any

from gos_web_socket.app.server.live import FlushScheduler
from gos_web_socket.app.server.memory import OutgoingBudget
from gos_web_socket.app.server.output import Output
from gos_web_socket.app.server.session import WireFormat
from gos_web_socket.app.server.topic import Topic
from gos_web_socket.app.stats import ServerStats

CONNECTION_LAYER = sys.argv[1] == "method"
SUBSCRIBERS, PUSHES, REPS = 16_000, 20, 5


class Plain(WireFormat):
    name = "plain"

    def event_frame(self, topic: str, *args: Any, **kwargs: Any) -> bytes:
        return f"{topic}={args[2]};".encode()


class Transport:
    def write(self, data: bytes) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


class Services:
    def __init__(self) -> None:
        self.stats = ServerStats()
        self.outgoing = OutgoingBudget.unlimited()
        self.flusher = FlushScheduler(self.outgoing, self.stats)
        self.max_outgoing_buffer = 1 << 20
        self.slow_reader_timeout = 60.0


class Client:
    wire_format = Plain()
    _fresh = None

    def __init__(self, i: int, services: Services) -> None:
        self.session_id = str(i)
        self.state = 3
        self.transport = Transport()
        self._output = Output(self, services, 3)  # type: ignore[arg-type]
        self.write_frame = self._output.write
        if not CONNECTION_LAYER:
            self.write_now = self._output.write_now  # type: ignore[method-assign]

    def write_now(self, frame: bytes) -> bool:
        if self._fresh is not None:
            frame = self._fresh(frame)
        return self._output.write_now(frame)

    def flush(self) -> None:
        self._output.flush()


async def main() -> None:
    services = Services()
    topic = Topic("t", turns=services.flusher)
    for i in range(SUBSCRIBERS):
        topic.add(Client(i, services))  # type: ignore[arg-type]
    runs = []
    for _ in range(REPS):
        t0 = time.perf_counter()
        for push in range(PUSHES):
            topic.broadcast(push)
            services.flusher.flush()
        runs.append((time.perf_counter() - t0) / (PUSHES * SUBSCRIBERS) * 1e6)
    shown = [round(run, 3) for run in runs]
    print(f"{sys.argv[1]}: {min(runs):.3f} µs per delivery (best of {REPS}), all {shown}")


asyncio.run(main())
