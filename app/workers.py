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

``WorkerPool`` makes the parts (the port, the fan-out, the links, the ops listener);
``WorkerWatch`` (app/worker_watch.py) starts, restarts and stops the workers, each slot's
process a ``WorkerSlot`` (app/worker_slot.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gos_web_socket.app.exceptions import ConfigurationError, ListenError
from gos_web_socket.app.worker_link import RelayFactory, WorkerLinks, link_line_limit
from gos_web_socket.app.worker_slot import WorkerSlot
from gos_web_socket.app.worker_watch import WorkerWatch

if TYPE_CHECKING:
    from gos_web_socket.app.ops import WorkerOps
    from gos_web_socket.app.transports.zmq.fanout import ZmqFanout
    from gos_web_socket.settings.models import Settings

logger = logging.getLogger(__name__)

__all__ = [
    "WorkerCommand",
    "WorkerPool",
    "WorkerRole",
    "check_workers",
    "worker_overrides",
]


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
        self.links = WorkerLinks(self.slots)
        """The parent's ends of the workers' links (app/worker_link.py)."""
        self.watch = WorkerWatch(
            self.slots,
            self.worker_argv,
            self.links,
            link_line_limit(settings),
            kill_after=settings.server.shutdown_timeout * 2 + 5,
        )
        """Starts, restarts and stops the workers (app/worker_watch.py)."""

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

    def worker_argv(self, slot: WorkerSlot, link_fd: int) -> Sequence[str]:
        """The command line of ``slot``'s worker, whose end of the socket pair is ``link_fd``."""
        assert self.command is not None, "run() sets the command"
        fanout = None if self.fanout is None else self.fanout.publish
        return self.command(WorkerRole(slot.index, link_fd, self.port, fanout))

    async def run(self, command: WorkerCommand) -> int:
        """Start everything, each worker with ``command``, serve until SIGTERM/SIGINT, stop
        every worker; the exit code."""
        self.command = command
        loop = asyncio.get_running_loop()
        stopping = self.watch.stopping
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        try:
            await self._start_parts()
            code = await self.watch.start_all()
            if code != 0:
                return code
            logger.info(
                "%d workers serving on %s:%s (parent pid %d)",
                self.count,
                self.settings.server.host,
                self.port,
                os.getpid(),
            )
            await stopping.wait()
            return await self.watch.stop_all()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            stopping.set()
            await self.watch.stop_all()
            await self._close_parts()

    async def _close_parts(self) -> None:
        for slot in self.slots:
            slot.close_link()
        if self.ops is not None:
            await self.ops.close()
        if self.fanout is not None:
            await self.fanout.close()
        if self._port_holder is not None:
            self._port_holder.close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
