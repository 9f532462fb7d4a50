"""The event loop's longest stall, watched from inside the loop (a server in this process)."""

from __future__ import annotations

import asyncio
import time


class Ticker:
    """The largest gap between two 1 ms ticks on the running loop: how long any client of a
    server on this loop waited, at worst, for its turn.

    Two figures: ``longest_ms``, wall time (what a client feels, including the time the OS
    gave the process's CPU to others: noisy on a loaded machine), and ``longest_cpu_ms``, the
    CPU time this thread spent between two ticks (the loop held by its own work, whatever the
    load of the machine).
    """

    def __init__(self) -> None:
        self.longest = 0.0
        self.longest_cpu = 0.0
        self.cpu_gaps: list[float] = []
        """CPU seconds between each two ticks, in order."""
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        last, last_cpu = loop.time(), time.thread_time()
        while True:
            await asyncio.sleep(0.001)  # the tick: a longer gap between two is a stall
            now, cpu = loop.time(), time.thread_time()
            self.longest = max(self.longest, now - last)
            self.longest_cpu = max(self.longest_cpu, cpu - last_cpu)
            self.cpu_gaps.append(cpu - last_cpu)
            last, last_cpu = now, cpu

    def __enter__(self) -> Ticker:
        self._task = asyncio.get_running_loop().create_task(self._tick())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()

    @property
    def longest_ms(self) -> float:
        return self.longest * 1000

    @property
    def longest_cpu_ms(self) -> float:
        return self.longest_cpu * 1000

    def cpu_ms(self, q: float) -> float:
        """The ``q`` quantile of the CPU time between two ticks, in ms (0: no tick yet)."""
        gaps = sorted(self.cpu_gaps)
        return gaps[min(len(gaps) - 1, int(q * len(gaps)))] * 1000 if gaps else 0.0
