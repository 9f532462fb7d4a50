"""``server.workers``: N server processes on one port, and the parent that supervises them.

With ``workers: 1`` (the default) none of this runs: ``gos-websocket server`` is the one
process it always was. With more, the ``server`` command becomes the parent::

    parent (WorkerPool)                       no WebSocket clients of its own
      ├─ ZmqFanout    binds pushers.zmq (PULL), republishes every frame on ipc:// (XPUB)
      ├─ /metrics, /health on server.metrics: every worker's, added up (ops.WorkerOps)
      └─ worker 0..N-1   `gos-websocket worker`: the usual Runtime, the port with SO_REUSEPORT,
                         ZeroMQ pushes from the fan-out (ZmqSubscriber), AMQP as a node of its
                         own (queue_mode per_node or stream), /metrics on a private port

A worker tells the parent it is up with one JSON line on a socket pair (``ParentLink`` in
app/worker_link.py, which also carries the workers' relay lines); the
same socket tells the worker when the parent is gone (it then stops as on SIGTERM). A worker
that dies is started again after a backoff; one that dies before it was ever up stops the
start-up with its exit code (a taken port, bad config: retrying cannot help). SIGTERM or
SIGINT to the parent sends SIGTERM to every worker, which drains as a single process does;
workers run in their own session, so a terminal's Ctrl-C reaches the parent alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gos_web_socket.app.backoff import Backoff
from gos_web_socket.app.exceptions import ConfigurationError, ListenError
from gos_web_socket.app.worker_link import RelayFactory, WorkerLinks, link_line_limit

if TYPE_CHECKING:
    from gos_web_socket.app.ops import WorkerOps
    from gos_web_socket.app.transports.zmq.fanout import ZmqFanout
    from gos_web_socket.settings.models import Settings

logger = logging.getLogger(__name__)

__all__ = [
    "WorkerCommand",
    "WorkerPool",
    "WorkerRole",
    "WorkerSlot",
    "check_workers",
    "worker_overrides",
]

FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0
STABLE_AFTER = 30.0
"""Seconds a worker must have lived for its slot's backoff to start again from FIRST_BACKOFF."""
START_TIMEOUT = 60.0
"""Seconds a worker may take from exec to ready (imports, binding, push handlers)."""


@dataclass(frozen=True)
class WorkerRole:
    """What makes a process a worker: its slot, the parent's socket, the ZeroMQ fan-out."""

    index: int
    link_fd: int
    port: int
    """The WebSocket port every worker binds (the parent chose it when ``server.port`` is 0)."""
    fanout: str | None = None
    """The parent's ``ZmqFanout`` endpoint; None when ZeroMQ is off."""


WorkerCommand = Callable[[WorkerRole], Sequence[str]]
"""The command line that starts one worker (the CLI builds it from its own arguments)."""


def check_workers(settings: Settings) -> None:
    """Refuse what would lose pushes with several workers.

    Raises:
        ConfigurationError: AMQP on the shared queue: the workers would be competing consumers
            and each push would reach the clients of one worker only.
    """
    if settings.server.worker_count < 2:
        return
    amqp = settings.pushers.amqp
    if amqp.enabled and amqp.queue_mode == "shared":
        raise ConfigurationError(
            [
                f"pushers.amqp.queue_mode: 'shared' is not allowed with server.workers "
                f"{settings.server.workers!r} (each push would reach one worker's clients): "
                "use per_node (a queue per worker) or stream"
            ]
        )


def worker_overrides(role: WorkerRole) -> dict[str, Any]:
    """Settings a worker changes: the parent's port, a private ops port, the demo page on
    worker 0 only (one HTTP port cannot be bound twice)."""
    server: dict[str, Any] = {
        "port": role.port,
        "workers": 1,
        "metrics": {"host": "127.0.0.1", "port": 0},
    }
    if role.index > 0:
        server["http"] = {"enabled": False}
    return {"server": server}


@dataclass
class WorkerSlot:
    """One worker position: its current process, and how it fared (for /health, /metrics)."""

    index: int
    process: asyncio.subprocess.Process | None = None
    ops_port: int | None = None
    ready: bool = False
    restarts: int = 0
    started_at: float = 0.0
    delays: Backoff = field(default_factory=lambda: Backoff(FIRST_BACKOFF, MAX_BACKOFF), repr=False)
    """The slot's restart delays; ``backoff`` is the next one."""
    link: asyncio.StreamWriter | None = field(default=None, repr=False)
    """The parent's end of the socket pair; closing it (or dying) tells the worker to stop."""

    @property
    def backoff(self) -> float:
        """Seconds the next restart waits."""
        return self.delays.current

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid


FanoutFactory = Callable[[str], "ZmqFanout"]
"""Makes the ZeroMQ fan-out publishing on an ``ipc://`` endpoint the pool chose."""
OpsFactory = Callable[["WorkerPool"], "WorkerOps"]
"""Makes the parent's ``/metrics`` and ``/health``, which read the pool's slots."""


class WorkerPool:
    """The parent of ``server.workers`` processes (see the module docstring).

    The container hands in how to make the fan-out, the ops listener and the dealer relay; the
    pool makes them when it starts, as they need its temporary directory, slots and links.
    """

    def __init__(
        self, settings: Settings, fanout: FanoutFactory, ops: OpsFactory, relay: RelayFactory
    ) -> None:
        self.settings = settings
        self.command: WorkerCommand | None = None
        self._make_fanout = fanout
        self._make_ops = ops
        self._make_relay = relay
        self.count = settings.server.worker_count
        self.slots = [WorkerSlot(index) for index in range(self.count)]
        self.port = settings.server.port
        self.fanout: ZmqFanout | None = None
        self.ops: WorkerOps | None = None
        self._dir: Path | None = None
        self._port_holder: socket.socket | None = None
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self.links = WorkerLinks(self.slots)
        """The parent's ends of the workers' links (app/worker_link.py)."""

    # -- start ----------------------------------------------------------------------------------

    def _reserve_port(self) -> None:
        """``port: 0``: choose the port once, so that every worker binds the same one; a bound
        socket that never listens keeps it ours without taking connections."""
        if self.port != 0:
            return
        host = self.settings.server.host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        holder = socket.socket(family, socket.SOCK_STREAM)
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            holder.bind((host, 0))
        except OSError as exc:
            holder.close()
            raise ListenError("server.port", host, 0, exc) from exc
        self._port_holder = holder
        self.port = holder.getsockname()[1]

    async def _start_parts(self) -> None:
        self._reserve_port()
        self._dir = Path(tempfile.mkdtemp(prefix="gos-workers-"))
        if self.settings.pushers.zmq.enabled:
            self.fanout = self._make_fanout(f"ipc://{self._dir}/zmq")
            await self.fanout.start()
        # one log numbers the ZeroMQ pushes and the HTTP publishes: a channel fed by both keeps
        # one epoch, so its history is not started afresh at each source (app/history.py)
        self.links.start(self._make_relay, None if self.fanout is None else self.fanout.log)
        self.ops = self._make_ops(self)
        await self.ops.start()

    def _spawn_args(self, slot: WorkerSlot) -> tuple[Sequence[str], socket.socket, socket.socket]:
        assert self.command is not None, "run() sets the command"
        ours, theirs = socket.socketpair()
        fanout = None if self.fanout is None else self.fanout.publish
        role = WorkerRole(slot.index, theirs.fileno(), self.port, fanout)
        return self.command(role), ours, theirs

    async def _spawn(self, slot: WorkerSlot) -> asyncio.StreamReader:
        argv, ours, theirs = self._spawn_args(slot)
        try:
            slot.process = await asyncio.create_subprocess_exec(
                *argv,
                pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
                # Its own session (uvloop has no process_group): a terminal's Ctrl-C reaches
                # the parent alone, which stops every worker with SIGTERM (exit 0).
                start_new_session=True,
            )
        finally:
            theirs.close()
        slot.ready, slot.ops_port = False, None
        slot.started_at = time.monotonic()
        limit = link_line_limit(self.settings)
        reader, slot.link = await asyncio.open_connection(sock=ours, limit=limit)
        logger.info("worker %d started (pid %d)", slot.index, slot.process.pid)
        return reader

    async def _until_ready(self, slot: WorkerSlot, reader: asyncio.StreamReader) -> bool:
        """Wait for the worker's report; False when it exited (or went silent) first."""
        try:
            line = await asyncio.wait_for(reader.readline(), START_TIMEOUT)
        except TimeoutError:
            logger.error("worker %d did not report within %s s", slot.index, START_TIMEOUT)
            await self._terminate(slot, kill_after=5.0)
            return False
        if not line:
            return False
        report = json.loads(line)
        slot.ops_port, slot.ready = report.get("ops_port"), True
        return True

    async def _exit_code(self, slot: WorkerSlot) -> int:
        assert slot.process is not None
        code = await slot.process.wait()
        slot.ready = False
        if slot.link is not None:
            slot.link.close()
            slot.link = None
        return code

    # -- supervise ------------------------------------------------------------------------------

    async def _watch(self, slot: WorkerSlot, reader: asyncio.StreamReader) -> None:
        """Restart the slot's worker whenever it dies, until the pool stops."""
        while True:
            lines = asyncio.create_task(self.links.read(slot.index, reader))
            code = await self._exit_code(slot)
            lines.cancel()
            await asyncio.gather(lines, return_exceptions=True)
            if self._stopping.is_set():
                return
            lived = time.monotonic() - slot.started_at
            if lived >= STABLE_AFTER:
                slot.delays.reset()
            logger.warning(
                "worker %d (pid %s) exited with %s after %.1f s; restarting in %.1f s",
                slot.index,
                slot.pid,
                code,
                lived,
                slot.backoff,
            )
            try:
                await asyncio.wait_for(self._stopping.wait(), slot.backoff)
                return
            except TimeoutError:
                pass
            slot.delays.next()
            slot.restarts += 1
            reader = await self._spawn(slot)
            if await self._until_ready(slot, reader):
                logger.info("worker %d is back (pid %s)", slot.index, slot.pid)

    async def run(self, command: WorkerCommand) -> int:
        """Start everything, each worker with ``command``, serve until SIGTERM/SIGINT, stop
        every worker; the exit code."""
        self.command = command
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._stopping.set)
        try:
            await self._start_parts()
            code = await self._start_workers()
            if code != 0:
                return code
            logger.info(
                "%d workers serving on %s:%s (parent pid %d)",
                self.count,
                self.settings.server.host,
                self.port,
                os.getpid(),
            )
            await self._stopping.wait()
            return await self._stop_workers()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            self._stopping.set()
            await self._stop_workers()
            await self._close_parts()

    async def _start_workers(self) -> int:
        """Start every worker and wait until each is ready; else stop them and return the
        first failed worker's exit code."""
        readers = [await self._spawn(slot) for slot in self.slots]
        waits = [
            asyncio.create_task(self._until_ready(slot, reader))
            for slot, reader in zip(self.slots, readers, strict=True)
        ]
        stop = asyncio.create_task(self._stopping.wait())
        pending: set[asyncio.Future[Any]] = {stop, *waits}
        try:
            while not all(wait.done() for wait in waits):
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if stop in done:  # SIGTERM during start-up
                    return 0
                failed = [slot for slot, w in zip(self.slots, waits, strict=True) if w in done]
                failed = [slot for slot in failed if not waits[slot.index].result()]
                if failed:  # one cannot start: the others would not fare better
                    self._stopping.set()
                    code = await self._exit_code(failed[0])
                    logger.error("worker %d exited with %s while starting", failed[0].index, code)
                    return code or 1
        finally:
            for waiting in (stop, *waits):
                waiting.cancel()
        for slot, reader in zip(self.slots, readers, strict=True):
            task = asyncio.create_task(self._watch(slot, reader), name=f"worker-{slot.index}")
            self._tasks.add(task)
        return 0

    async def _terminate(self, slot: WorkerSlot, kill_after: float) -> int | None:
        process = slot.process
        if process is None:
            return None
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), kill_after)
            except TimeoutError:
                logger.warning("worker %d did not stop in %s s; killing it", slot.index, kill_after)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        return process.returncode

    async def _stop_workers(self) -> int:
        """SIGTERM every worker; each drains within ``shutdown_timeout`` or is killed."""
        self._stopping.set()
        kill_after = self.settings.server.shutdown_timeout * 2 + 5
        codes = await asyncio.gather(*(self._terminate(slot, kill_after) for slot in self.slots))
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        return 0 if all(code in (0, None) for code in codes) else 1

    async def _close_parts(self) -> None:
        for slot in self.slots:
            if slot.link is not None:
                slot.link.close()
                slot.link = None
        if self.ops is not None:
            await self.ops.close()
        if self.fanout is not None:
            await self.fanout.close()
        if self._port_holder is not None:
            self._port_holder.close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
