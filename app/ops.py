"""The operations side of a server process: ``/metrics``, ``/health`` and the ``-m`` profile report.

``OpsService`` listens on ``server.metrics`` (its own port, routes only: no demo files there)
and is started by the ``server_launched`` listener, like the demo page's HTTP service::

    ops = OpsService(settings.server.metrics, pushers)
    dispatcher.add_listener(SERVER_LAUNCHED, ops.on_server_launched)
    ...
    await ops.close()

``check_health`` is the client side, used by ``gos-websocket health``.
"""

from __future__ import annotations

import json
import logging
import resource
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gos_web_socket.app.metrics import CONTENT_TYPE, ServerMetrics, subscriptions, transport_of
from gos_web_socket.app.web import Request, Response, StaticHttpServer

if TYPE_CHECKING:
    from gos_web_socket.app.events import ServerLaunchedEvent
    from gos_web_socket.app.server import WampServer
    from gos_web_socket.app.transports.base import Pusher
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
        consuming = handler.is_consuming
        handlers[name] = {"transport": transport_of(handler), "consuming": consuming}
        if not consuming:
            failing.append(f"push_handler {name}: not consuming")
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


# -- the client side (gos-websocket health) ---------------------------------------


def check_health(host: str, port: int, timeout: float = 5.0) -> tuple[int, dict[str, Any]]:
    """GET ``/health``; returns the status and the JSON body.

    Raises:
        OSError: nothing answers there (refused, timed out, not HTTP).
    """
    url = f"http://{host}:{port}/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:  # noqa: S310  (http only)
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        with exc:
            try:
                return exc.code, json.loads(exc.read())
            except ValueError:
                return exc.code, {"status": "not ready", "failing": [f"HTTP {exc.code}"]}
    except ValueError as exc:  # a 200 without JSON: something else listens there
        raise OSError(f"{url} did not answer with JSON: {exc}") from exc


def launched_listener(ops: OpsService) -> tuple[str, Any, int]:
    """``ops.on_server_launched`` as an ``event_listeners`` entry for the container."""
    from gos_web_socket.app.events import SERVER_LAUNCHED

    return SERVER_LAUNCHED, ops.on_server_launched, 0
