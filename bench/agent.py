"""Child processes that take commands from the orchestrator over a pipe.

Every server, client fleet and pusher is an ``Agent`` in its own process (``spawn``), so load
generators never share a core-bound event loop with the system under test. A child serves one
command at a time and exits by itself after ``max_life`` seconds, whatever the parent does.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import multiprocessing as mp
import os
import resource
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any

# Agent kinds and where they live; imported only in the child that needs them.
KINDS = {
    "fleet": "bench.fleet:Fleet",
    "raw_server": "bench.servers:RawServer",
    "sio_server": "bench.servers:SioServer",
    "ours_server": "bench.servers:OursServer",
    "picows_server": "bench.rawlimit:PicowsServer",
    "websockets_server": "bench.rawlimit:WebsocketsServer",
    "ours-uvloop_server": "bench.servers:OursServer",
    "ours-cli_server": "bench.servers:OursCliServer",
    "raw_pusher": "bench.pushers:RawPusher",
    "sio_pusher": "bench.pushers:SioPusher",
    "ours_pusher": "bench.pushers:OursPusher",
    "sync_pusher": "bench.sync_push:SyncPusher",
    "recovery_fleet": "bench.recovery:RecoveryFleet",
    "hundred_k_fleet": "bench.hundred_k:RawFleet",
}
UVLOOP_KINDS = frozenset({"ours-uvloop_server"})
"""Agents run on uvloop (server.event_loop: uvloop); every other one on asyncio's own loop."""


def raise_nofile() -> None:
    """Raise the open-file soft limit to the hard limit (thousands of sockets)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class GcPauses:
    """Every garbage collection of this process since the last reset: (generation, seconds).

    A full (generation 2) collection stops the event loop for as long as it scans every tracked
    object, so it shows up directly in push-to-receive latency; servers report these with their
    latency figures.
    """

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append((info["generation"], time.perf_counter() - self._started))

    def summary(self) -> dict[str, Any]:
        """Count, total and longest pause per generation (ms), then reset."""
        out: dict[str, Any] = {}
        for gen in (0, 1, 2):
            times = [t for g, t in self.pauses if g == gen]
            out[f"gc{gen}_count"] = len(times)
            out[f"gc{gen}_total_ms"] = round(sum(times) * 1e3, 2)
            out[f"gc{gen}_max_ms"] = round(max(times, default=0.0) * 1e3, 2)
        self.pauses = []
        return out


class Agent:
    """Base of the child side: ``do_<command>`` coroutines answer the parent's commands."""

    gc_pauses: GcPauses | None = None

    async def do_heap(self) -> dict[str, Any]:
        """Tracked objects, frozen objects and the time of one full collection (``bench heap``)."""
        t0 = time.perf_counter()
        gc.collect()
        full = time.perf_counter() - t0
        return {
            "objects": len(gc.get_objects()),
            "frozen": gc.get_freeze_count(),
            "full_ms": round(full * 1e3, 2),
        }

    async def do_gc(self) -> dict[str, Any]:
        """This process's collections since the previous call (the first call starts it)."""
        if self.gc_pauses is None:
            self.gc_pauses = GcPauses()
        return self.gc_pauses.summary()

    async def close(self) -> None:
        """Release everything; called once when the child stops."""

    async def serve(self, conn: Connection, max_life: float) -> None:
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[Any] = asyncio.Queue()

        def readable() -> None:
            try:
                inbox.put_nowait(conn.recv())
            except EOFError:  # parent went away
                loop.remove_reader(conn.fileno())
                inbox.put_nowait(("stop", ()))

        loop.add_reader(conn.fileno(), readable)
        deadline = loop.time() + max_life
        try:
            while True:
                try:
                    cmd, args = await asyncio.wait_for(inbox.get(), deadline - loop.time())
                except TimeoutError:
                    break
                if cmd == "stop":
                    break
                try:
                    result = await getattr(self, "do_" + cmd)(*args)
                    conn.send(("ok", result))
                except Exception:
                    conn.send(("error", traceback.format_exc()))
        finally:
            loop.remove_reader(conn.fileno())
            await self.close()
            try:
                conn.send(("ok", "stopped"))
            except OSError:
                pass


def _child_main(kind: str, kwargs: dict[str, Any], conn: Connection, max_life: float) -> None:
    raise_nofile()
    module_name, class_name = KINDS[kind].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)

    async def main() -> None:
        agent = cls(**kwargs)
        await agent.serve(conn, max_life)

    factory = None
    if kind in UVLOOP_KINDS:
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main())


class Child:
    """The parent's handle on one agent process."""

    def __init__(self, kind: str, max_life: float = 900.0, **kwargs: Any) -> None:
        ctx = mp.get_context("spawn")
        self.kind = kind
        self.conn, child_conn = ctx.Pipe()
        self.proc = ctx.Process(
            target=_child_main, args=(kind, kwargs, child_conn, max_life), daemon=True
        )
        self.proc.start()
        child_conn.close()

    @property
    def pid(self) -> int:
        assert self.proc.pid is not None
        return self.proc.pid

    def call(self, cmd: str, *args: Any, timeout: float = 120.0) -> Any:
        """Run ``do_<cmd>(*args)`` in the child and return its result."""
        self.send(cmd, *args)
        return self.result(cmd, timeout)

    def send(self, cmd: str, *args: Any) -> None:
        """Start ``do_<cmd>(*args)`` in the child; ``result()`` waits for it."""
        self.conn.send((cmd, args))

    def result(self, cmd: str = "", timeout: float = 120.0) -> Any:
        if not self.conn.poll(timeout):
            raise TimeoutError(f"{self.kind} (pid {self.pid}) did not answer {cmd} in {timeout} s")
        status, value = self.conn.recv()
        if status != "ok":
            raise RuntimeError(f"{self.kind}.{cmd} failed in the child:\n{value}")
        return value

    def stop(self) -> None:
        """Ask the child to stop; kill this one process if it does not."""
        if self.proc.is_alive():
            try:
                self.conn.send(("stop", ()))
                if self.conn.poll(15):
                    self.conn.recv()
            except (OSError, EOFError):
                pass
            self.proc.join(5)
        if self.proc.is_alive():
            os.kill(self.pid, 9)
            self.proc.join(5)
        self.conn.close()

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def call_all(
    children: list[Child], cmd: str, args: list[tuple[Any, ...]], timeout: float
) -> list[Any]:
    """Run one command in several children at once; results in order."""
    for child, a in zip(children, args, strict=True):
        child.send(cmd, *a)
    return [child.result(cmd, timeout) for child in children]
