"""The operations side of a server process: ``/metrics``, ``/health`` and the ``-m`` profile report.

``OpsService`` listens on ``server.metrics`` (its own port, routes only: no demo files there)
and is started by the ``server_launched`` listener, like the demo page's HTTP service::

    ops = OpsService(settings.server.metrics, pushers)
    dispatcher.add_listener(SERVER_LAUNCHED, ops.on_server_launched)
    ...
    await ops.close()

``check_health`` is the client side, used by ``gos-websocket health`` (through ``app.http_client``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from gos_web_socket.app.http_client import get as http_get, get_sync
from gos_web_socket.app.metrics import (
    CONTENT_TYPE,
    NAMESPACE,
    ServerMetrics,
    merge_exposition,
    subscriptions,
    transport_of,
)
from gos_web_socket.app.presence import http as presence_http
from gos_web_socket.app.web import Request, Response, StaticHttpServer

if TYPE_CHECKING:
    from gos_web_socket.app.events import ServerLaunchedEvent
    from gos_web_socket.app.server import WampServer
    from gos_web_socket.app.transports.pusher import Pusher
    from gos_web_socket.settings.models import MetricsSettings

logger = logging.getLogger(__name__)


# -- readiness ---------------------------------------------------------------------------------


def readiness(server: WampServer | None) -> tuple[bool, dict[str, Any]]:
    """Ready while the server accepts connections and every enabled push handler consumes.

    The body names each part and lists what is not ready under ``failing``.
    """
    if server is None:
        return False, {"status": "not ready", "failing": ["server: not started"]}
    failing: list[str] = []
    if not server.accepting:
        failing.append("server: not accepting connections")
    handlers: dict[str, Any] = {}
    for name, handler in server.push_handlers.items():
        consuming, deaf = handler.is_consuming, handler.deaf
        handlers[name] = {"transport": transport_of(handler), "consuming": consuming}
        if not consuming:
            failing.append(f"push_handler {name}: not consuming")
        if deaf:
            handlers[name]["deaf"] = True
            failing.append(f"push_handler {name}: deaf (a canary marker did not come back)")
    body = {
        "status": "not ready" if failing else "ready",
        "failing": failing,
        "server": {"accepting": server.accepting, "connections": server.connections},
        "push_handlers": handlers,
    }
    return not failing, body


# -- the profile report (server -m) --------------------------------------------------------------


def memory_mib() -> tuple[float, float]:
    """Current and peak resident memory in MiB (current from /proc where there is one)."""
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak = peak_kib / 1024 if sys.platform != "darwin" else peak_kib / 1024 / 1024
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return peak, peak
    rss = pages * resource.getpagesize() / 1048576
    return rss, max(peak, rss)


class ProfileReport:
    """GOS's ``PeriodicMemoryUsage`` grown up: memory, clients and rates since the last tick."""

    def __init__(self, server: WampServer) -> None:
        self.server = server
        self._last = self._sample()

    def _sample(self) -> tuple[float, int, int, int]:
        stats = self.server.stats
        pushes = sum(handler.stats.received for handler in self.server.push_handlers.values())
        return time.monotonic(), pushes, stats.frames_in, stats.frames_out

    def fields(self) -> dict[str, Any]:
        """One report; rates are per second since the previous one."""
        now = self._sample()
        elapsed = max(now[0] - self._last[0], 1e-9)
        rates = [(b - a) / elapsed for a, b in zip(self._last[1:], now[1:], strict=True)]
        self._last = now
        rss, peak = memory_mib()
        return {
            "rss_mib": round(rss, 1),
            "peak_rss_mib": round(peak, 1),
            "connections": self.server.connections,
            "subscriptions": subscriptions(self.server),
            "topics": len(self.server.topics),
            "pushes_per_s": round(rates[0], 1),
            "frames_in_per_s": round(rates[1], 1),
            "frames_out_per_s": round(rates[2], 1),
        }

    def tick(self) -> None:
        logger.info("profile", extra={**self.fields(), "rate_limit": False})


# -- the HTTP side -------------------------------------------------------------------------------


class RoutesOnlyHttpServer(StaticHttpServer):
    """The demo page's HTTP server without its files: only registered routes answer."""

    def file_for(self, url_path: str) -> Path | None:
        return None


class OpsService:
    """``/metrics`` and ``/health`` of one server on ``server.metrics``, and the profile timer."""

    def __init__(
        self, settings: MetricsSettings, pushers: Mapping[str, Pusher] | None = None
    ) -> None:
        self.settings = settings
        self.pushers = pushers
        self.server: WampServer | None = None
        self.metrics: ServerMetrics | None = None
        self.http = RoutesOnlyHttpServer()
        self.http.register("/metrics", self._metrics)
        self.http.register("/health", self._health)
        self.http.register(presence_http.PATH, self._presence)

    @property
    def port(self) -> int:
        return self.http.port

    def attach(self, server: WampServer) -> ServerMetrics:
        """Measure ``server`` from now on (events before this are not counted)."""
        if self.metrics is not None:
            self.metrics.detach()
        self.server = server
        self.metrics = ServerMetrics(server, self.pushers)
        return self.metrics

    async def start(self) -> None:
        """Listen unless disabled; a second call while listening does nothing.

        Raises:
            ListenError: ``server.metrics`` names an address that cannot be bound.
        """
        if self.settings.enabled and not self.http.running:
            await self.http.start(
                self.settings.host, self.settings.port, "server.metrics", "metrics and health"
            )

    async def on_server_launched(self, event: ServerLaunchedEvent) -> None:
        """The ``server_launched`` listener: measure that server, and profile it under -m."""
        server: WampServer = event.server
        self.attach(server)
        if event.profile:
            report = ProfileReport(server)
            server.timers.add("profile", self.settings.profile_interval, report.tick)

    async def close(self) -> None:
        await self.http.close()
        if self.metrics is not None:
            self.metrics.detach()

    def _metrics(self, request: Request) -> Response:
        if self.metrics is None:
            return Response.text("no server attached\n", 503)
        return Response(200, self.metrics.render(), CONTENT_TYPE)

    def _health(self, request: Request) -> Response:
        ready, body = readiness(self.server)
        return Response.json(body, 200 if ready else 503)

    async def _presence(self, request: Request) -> Response:
        server = self.server
        return await presence_http.answer(
            None if server is None else server.broker.presence, request
        )


# -- the parent of several workers (server.workers) ------------------------------------------


SCRAPE_TIMEOUT = 2.0
"""Seconds the parent waits for one worker's /metrics or /health."""


class WorkerView(Protocol):
    """One worker as the parent's ops read it (``app.worker_slot.WorkerSlot``)."""

    @property
    def index(self) -> int: ...
    @property
    def ready(self) -> bool: ...
    @property
    def ops_port(self) -> int | None: ...
    @property
    def restarts(self) -> int: ...
    @property
    def pid(self) -> int | None: ...


class FanoutView(Protocol):
    """The parent's ZeroMQ fan-out as its ops read it (``app.transports.zmq.fanout.ZmqFanout``)."""

    @property
    def forwarded(self) -> int: ...
    @property
    def oversize(self) -> int: ...
    @property
    def is_open(self) -> bool: ...


class PoolView(Protocol):
    """The workers as the parent's ops read them (``app.workers.WorkerPool``): typed here so
    that ops import nothing of the workers (the container makes their ``WorkerOps``)."""

    @property
    def count(self) -> int: ...
    @property
    def slots(self) -> Sequence[WorkerView]: ...
    @property
    def fanout(self) -> FanoutView | None: ...


class WorkerOps:
    """``/metrics`` and ``/health`` of a multi-worker server, on ``server.metrics``.

    Each request asks every worker's private ops port and adds the answers up
    (``merge_exposition``, ``merge_readiness``), so one scrape covers the whole server.
    """

    def __init__(self, settings: MetricsSettings, pool: PoolView) -> None:
        self.settings = settings
        self.pool = pool
        self.http = RoutesOnlyHttpServer()
        self.http.register("/metrics", self._metrics)
        self.http.register("/health", self._health)
        self.http.register(presence_http.PATH, self._presence)

    async def start(self) -> None:
        """Listen unless disabled. Raises: ListenError."""
        if self.settings.enabled:
            await self.http.start(
                self.settings.host, self.settings.port, "server.metrics", "metrics and health"
            )

    async def close(self) -> None:
        await self.http.close()

    async def _ask(self, path: str) -> dict[int, tuple[int, bytes] | None]:
        """Every worker's answer to ``path`` by slot; None for a worker that is down or silent."""
        slots = self.pool.slots

        async def one(port: int | None) -> tuple[int, bytes] | None:
            if port is None:
                return None
            try:
                return await http_get("127.0.0.1", port, path, SCRAPE_TIMEOUT)
            except OSError:
                return None

        answers = await asyncio.gather(*(one(s.ops_port if s.ready else None) for s in slots))
        return {slot.index: answer for slot, answer in zip(slots, answers, strict=True)}

    async def _metrics(self, request: Request) -> Response:
        answers = await self._ask("/metrics")
        texts = [body.decode() for status, body in filter(None, answers.values()) if status == 200]
        return Response(200, merge_exposition(texts, self._own_metrics()), CONTENT_TYPE)

    def _own_metrics(self) -> list[Metric]:
        pool = self.pool
        fanout = pool.fanout
        families: list[Metric] = [
            GaugeMetricFamily(f"{NAMESPACE}_workers", "Worker processes configured.", pool.count),
            GaugeMetricFamily(
                f"{NAMESPACE}_workers_ready",
                "Worker processes up and serving.",
                sum(1 for slot in pool.slots if slot.ready),
            ),
            CounterMetricFamily(
                f"{NAMESPACE}_worker_restarts",
                "Workers started again after one died.",
                sum(slot.restarts for slot in pool.slots),
            ),
        ]
        if fanout is not None:
            families.append(
                CounterMetricFamily(
                    f"{NAMESPACE}_zmq_fanout_forwarded",
                    "ZeroMQ pushes the parent forwarded to the workers.",
                    fanout.forwarded,
                )
            )
            families.append(
                CounterMetricFamily(
                    f"{NAMESPACE}_zmq_fanout_oversize",
                    "ZeroMQ frames over zmq_max_message_size the parent dropped (logged).",
                    fanout.oversize,
                )
            )
        return families

    async def _presence(self, request: Request) -> Response:
        """A ready worker's answer (each holds every worker's members)."""
        channel = presence_http.channel_of(request)
        if isinstance(channel, Response):
            return channel
        answers = await self._ask(presence_http.presence_path(channel))
        for found in filter(None, answers.values()):
            if found[0] == 200:
                return Response(200, found[1], "application/json")
        return Response.json({"error": "no worker answered"}, 503)

    async def _health(self, request: Request) -> Response:
        answers = await self._ask("/health")
        bodies: dict[int, dict[str, Any] | None] = {}
        for index, answer in answers.items():
            try:
                bodies[index] = None if answer is None else json.loads(answer[1])
            except ValueError:
                bodies[index] = None
        fanout = self.pool.fanout
        ready, body = merge_readiness(bodies, None if fanout is None else fanout.is_open)
        for slot in self.pool.slots:  # which process is which (to signal one, to see restarts)
            if body["workers"][str(slot.index)] is not None:
                body["workers"][str(slot.index)]["pid"] = slot.pid
        return Response.json(body, 200 if ready else 503)


def merge_readiness(
    workers: Mapping[int, dict[str, Any] | None], fanout_open: bool | None
) -> tuple[bool, dict[str, Any]]:
    """The server's readiness from each worker's ``/health`` body (None: down or silent).

    ``ready``: every worker ready; ``degraded``: some are (still 200: the kernel sends new
    connections to the live ones only); ``not ready`` (503): none is, or the ZeroMQ fan-out
    (``fanout_open``; None when ZeroMQ is off) is down.
    """
    failing: list[str] = []
    ready_count = accepting = connections = 0
    for index, body in sorted(workers.items()):
        if body is None:
            failing.append(f"worker {index}: not running")
            continue
        if body.get("status") == "ready":
            ready_count += 1
        failing.extend(f"worker {index}: {problem}" for problem in body.get("failing", []))
        server = body.get("server", {})
        accepting += 1 if server.get("accepting") else 0
        connections += int(server.get("connections", 0))
    if fanout_open is False:
        failing.append("zmq fan-out: not forwarding")
    if ready_count == len(workers) and not failing:
        status = "ready"
    elif ready_count and fanout_open is not False:
        status = "degraded"
    else:
        status = "not ready"
    body = {
        "status": status,
        "failing": failing,
        "server": {
            "accepting": accepting > 0,
            "connections": connections,
            "workers": len(workers),
            "workers_ready": ready_count,
        },
        "workers": {str(index): body for index, body in sorted(workers.items())},
    }
    return status != "not ready", body


# -- the client side (gos-websocket health) ---------------------------------------


def check_health(host: str, port: int, timeout: float = 5.0) -> tuple[int, dict[str, Any]]:
    """GET ``/health``; returns the status and the JSON body.

    Raises:
        OSError: nothing answers there (refused, timed out, not HTTP, a 200 without JSON).
    """
    status, body = get_sync(host, port, "/health", timeout)
    try:
        return status, json.loads(body)
    except ValueError as exc:
        if status == 200:  # something else listens there
            raise OSError(f"http://{host}:{port}/health did not answer with JSON: {exc}") from exc
        return status, {"status": "not ready", "failing": [f"HTTP {status}"]}


def launched_listener(ops: OpsService) -> tuple[str, Any, int]:
    """``ops.on_server_launched`` as an ``event_listeners`` entry for the container."""
    from gos_web_socket.app.events import SERVER_LAUNCHED

    return SERVER_LAUNCHED, ops.on_server_launched, 0
