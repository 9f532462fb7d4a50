"""Prometheus metrics of one WAMP server, in a registry of its own.

Three sources, none of them costing the hot path more than an int increment:

- callback gauges read the server's live state (connections, subscriptions, topics) at scrape;
- ``client_connected``, ``push_success`` and ``push_fail`` listeners count into plain ints;
- a collector reads those and the counters of ``app.stats`` (frames, cut-offs, pushes received,
  deduplicated, reconnects, restarts, push-to-broadcast time, pushes sent and failed by pushers)
  and of the channel history (recoveries by outcome, publications replayed).

A registry per server keeps two servers in one process (and tests) from sharing counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from gos_web_socket.app.events import (
    CLIENT_CONNECTED,
    PUSH_FAIL,
    PUSH_SUCCESS,
    ClientConnectedEvent,
    PusherFailEvent,
    PushHandlerFailEvent,
    PushHandlerSuccessEvent,
)

if TYPE_CHECKING:
    from gos_web_socket.app.server import WampServer
    from gos_web_socket.app.transports.pusher import Pusher

NAMESPACE = "gos_websocket"
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
"""The classic text format: what every Prometheus version scrapes."""

HANDLER_LABELS = ("handler", "transport")
PUSHER_LABELS = ("pusher", "transport")


def transport_of(component: object) -> str:
    """The transport a handler or pusher speaks: its class's ``name`` (``amqp``, ``zmq``), which
    stays put when the registry gives the instance another alias; else its module's last part."""
    cls = type(component)
    name = getattr(cls, "name", "")
    return name if isinstance(name, str) and name else cls.__module__.rsplit(".", 1)[-1]


def subscriptions(server: WampServer) -> int:
    """Subscriptions across live topics (one client in three topics counts three)."""
    return sum(len(topic) for topic in server.topics.values())


class ServerMetrics:
    """Every metric of ``server`` (and of the in-process ``pushers``), ready to scrape."""

    def __init__(
        self,
        server: WampServer,
        pushers: Mapping[str, Pusher] | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.server = server
        self.pushers: Mapping[str, Pusher] = pushers or {}
        self.registry = registry or CollectorRegistry()
        self.connections_opened = 0
        self.handled: Counter[tuple[str, str]] = Counter()
        self.failed: Counter[tuple[str, str]] = Counter()

        def gauge(name: str, documentation: str) -> Gauge:
            return Gauge(name, documentation, namespace=NAMESPACE, registry=self.registry)

        gauge("connections", "Open WAMP sessions.").set_function(lambda: server.connections)
        gauge("subscriptions", "Subscriptions across live topics.").set_function(
            lambda: subscriptions(server)
        )
        gauge("topics", "Topics with at least one subscriber.").set_function(
            lambda: len(server.topics)
        )
        dealer = server.broker.dealer
        gauge("registrations", "Procedures clients registered (the dealer).").set_function(
            lambda: len(dealer.registrations)
        )
        gauge("calls_in_flight", "Calls to client procedures not answered yet.").set_function(
            lambda: dealer.invocations.in_flight
        )
        self.registry.register(_Collector(self))

        self._listeners: list[tuple[str, Any]] = [
            (CLIENT_CONNECTED, self._on_connected),
            (PUSH_SUCCESS, self._on_push_success),
            (PUSH_FAIL, self._on_push_fail),
        ]
        for event_name, listener in self._listeners:
            server.dispatcher.add_listener(event_name, listener)

    def detach(self) -> None:
        """Stop counting events (the server's dispatcher outlives this object in tests)."""
        for event_name, listener in self._listeners:
            self.server.dispatcher.remove_listener(event_name, listener)

    def render(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)

    def _on_connected(self, event: ClientConnectedEvent) -> None:
        self.connections_opened += 1

    def _on_push_success(self, event: PushHandlerSuccessEvent) -> None:
        self.handled[event.push_handler.name, transport_of(event.push_handler)] += 1

    def _on_push_fail(self, event: PushHandlerFailEvent | PusherFailEvent) -> None:
        if not isinstance(event, PushHandlerFailEvent):
            return  # a background push of a pusher: counted in gos_web_socket_pusher_failed
        self.failed[event.push_handler.name, transport_of(event.push_handler)] += 1


class _Collector:
    """Turns the counts into metric families at scrape time."""

    def __init__(self, metrics: ServerMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        server = self.metrics.server
        stats = server.stats
        yield _counter(
            "connections_opened", "WAMP sessions opened.", self.metrics.connections_opened
        )
        yield _counter(
            "frames_received", "WebSocket messages received from clients.", stats.frames_in
        )
        yield _counter("frames_sent", "WebSocket frames written to clients.", stats.frames_out)
        yield _counter(
            "clients_cut_off",
            "Clients dropped for not reading (output over max_outgoing_buffer).",
            stats.cut_off,
        )
        yield _counts_by(
            "clients_closed",
            "Clients closed for what they sent (a spent budget, a bad frame), by reason.",
            "reason",
            stats.closed,
        )
        yield GaugeMetricFamily(
            f"{NAMESPACE}_accepting",
            "1 while the server takes new connections.",
            value=1 if server.accepting else 0,
        )
        budget = server.listener.handshakes
        yield GaugeMetricFamily(
            f"{NAMESPACE}_handshakes_in_progress",
            "Opening handshakes in progress (at most server.limits.handshakes_in_progress).",
            value=budget.in_progress if budget is not None else 0,
        )
        yield _counter(
            "handshake_budget_full",
            "Times accepting stopped with handshakes_in_progress handshakes in progress.",
            budget.full_total if budget is not None else 0,
        )
        yield GaugeMetricFamily(
            f"{NAMESPACE}_handshakes_allowed",
            "Handshakes admitted at once now: handshakes_in_progress, cut while the loop lags.",
            value=budget.allowed if budget is not None else 0,
        )
        yield _counter(
            "handshake_budget_cut",
            "Times a lagging event loop cut the handshakes admitted at once.",
            budget.cut_total if budget is not None else 0,
        )
        yield from self._handler_metrics()
        yield from self._pusher_metrics()
        yield from self._identity_metrics()
        yield from self._history_metrics()

    def _history_metrics(self) -> Iterable[Metric]:
        """Recoveries by outcome, publications they replayed, stream reads they needed,
        channels keeping history."""
        history = self.metrics.server.history
        outcomes = {"complete": history.recoveries[True], "incomplete": history.recoveries[False]}
        yield _counts_by(
            "recoveries",
            "Clients back with a position: complete (nothing lost) or incomplete (reload).",
            "outcome",
            outcomes,
        )
        yield _counter(
            "recovery_replayed", "Publications sent again by recoveries.", history.replayed
        )
        backfill = history.backfill
        yield _counter(
            "recovery_stream_reads",
            "Reads of the stream for recoveries older than a channel's history (stream mode).",
            backfill.reads if backfill is not None else 0,
        )
        yield GaugeMetricFamily(
            f"{NAMESPACE}_history_channels",
            "Channels keeping history (routes with history: {size, ttl}).",
            value=len(history),
        )

    def _identity_metrics(self) -> Iterable[Metric]:
        """Users admitted by provider, refusals by reason, expiries, route-rule refusals."""
        server = self.metrics.server
        authenticator = server.authenticator
        yield _counts_by(
            "auth_accepted",
            "Connections authenticated, by provider (anonymous included).",
            "provider",
            authenticator.accepted,
        )
        yield _counts_by(
            "auth_refused",
            "Connections refused by authentication, by reason (missing, expired, bad_signature).",
            "reason",
            authenticator.refused,
        )
        yield _counts_by(
            "authz_refused",
            "Subscribes, publishes and calls refused by a route's auth rule, by verb.",
            "verb",
            server.broker.rules.refused,
        )
        yield _counter(
            "auth_expired",
            "Live connections closed because their token expired.",
            authenticator.expired,
        )

    def _handler_metrics(self) -> Iterable[Metric]:
        families = {
            "received": _labelled("pushes_received", "Push bodies taken from the transport."),
            "handled": _labelled("pushes_handled", "Pushes whose topic on_push returned."),
            "failed": _labelled("pushes_failed", "Pushes not decoded, routed or handled."),
            "deduplicated": _labelled("pushes_deduplicated", "Redeliveries dropped by id."),
            "oversize": _labelled(
                "pushes_oversize", "Bodies dropped for being over the transport's size limit."
            ),
            "reconnects": _labelled("push_handler_reconnects", "Connections regained."),
            "restarts": _labelled(
                "push_handler_restarts", "Restarts by the supervisor after a failure."
            ),
            "deaf": _labelled(
                "push_handler_deaf", "Times a canary marker did not come back (then restarted)."
            ),
        }
        consuming = GaugeMetricFamily(
            f"{NAMESPACE}_push_handler_consuming",
            "1 while the push handler can receive pushes.",
            labels=HANDLER_LABELS,
        )
        latency = HistogramMetricFamily(
            f"{NAMESPACE}_push_broadcast_seconds",
            "Time from taking a push body to its topic's on_push returning.",
            labels=HANDLER_LABELS,
        )
        for name, handler in self.metrics.server.push_handlers.items():
            key = (name, transport_of(handler))
            labels = list(key)
            hs = handler.stats
            families["received"].add_metric(labels, hs.received)
            families["handled"].add_metric(labels, self.metrics.handled[key])
            families["failed"].add_metric(labels, self.metrics.failed[key])
            families["deduplicated"].add_metric(labels, hs.deduplicated)
            families["oversize"].add_metric(labels, hs.oversize)
            families["reconnects"].add_metric(labels, hs.reconnects)
            families["restarts"].add_metric(labels, hs.restarts)
            families["deaf"].add_metric(labels, handler.canary.misses if handler.canary else 0)
            consuming.add_metric(labels, 1 if handler.is_consuming else 0)
            latency.add_metric(labels, hs.latency.cumulative(), hs.latency.sum)
        yield from families.values()
        yield consuming
        yield latency

    def _pusher_metrics(self) -> Iterable[Metric]:
        sent = CounterMetricFamily(
            f"{NAMESPACE}_pusher_sent",
            "Pushes a pusher handed to its transport.",
            labels=PUSHER_LABELS,
        )
        failed = CounterMetricFamily(
            f"{NAMESPACE}_pusher_failed", "Pushes a pusher could not send.", labels=PUSHER_LABELS
        )
        for name, pusher in self.metrics.pushers.items():
            labels = [name, transport_of(pusher)]
            sent.add_metric(labels, pusher.stats.sent)
            failed.add_metric(labels, pusher.stats.failed)
        yield sent
        yield failed


def _counter(name: str, documentation: str, value: int) -> CounterMetricFamily:
    return CounterMetricFamily(f"{NAMESPACE}_{name}", documentation, value=value)


def _counts_by(
    name: str, documentation: str, label: str, counts: Mapping[str, int]
) -> CounterMetricFamily:
    """One counter with a sample per key of ``counts`` (a reason, a provider, a verb)."""
    family = CounterMetricFamily(f"{NAMESPACE}_{name}", documentation, labels=(label,))
    for key, count in sorted(counts.items()):
        family.add_metric([key], count)
    return family


def _labelled(name: str, documentation: str) -> CounterMetricFamily:
    return CounterMetricFamily(f"{NAMESPACE}_{name}", documentation, labels=HANDLER_LABELS)


# -- several workers as one (server.workers) -----------------------------------------------------


def merge_exposition(texts: Iterable[str], extra: Iterable[Metric] = ()) -> bytes:
    """Several workers' ``/metrics`` as one: samples with the same name and labels added up.

    Counters, histograms and the connection gauges add up across workers as they would across
    nodes; the 0/1 gauges (``accepting``, ``push_handler_consuming``) become counts of workers.
    ``extra`` families (the parent's own: workers, restarts, fan-out) are appended as given.
    """
    from prometheus_client.parser import text_string_to_metric_families

    families: dict[str, Metric] = {}
    sums: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            merged = families.setdefault(
                family.name, Metric(family.name, family.documentation, family.type)
            )
            totals = sums.setdefault(merged.name, {})
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                if sample.name.endswith("_created"):  # a start time: the earliest, not a sum
                    totals[key] = min(totals.get(key, sample.value), sample.value)
                else:
                    totals[key] = totals.get(key, 0.0) + sample.value
    for name, merged in families.items():
        for (sample_name, labels), value in sums[name].items():
            merged.add_sample(sample_name, dict(labels), value)
    registry = CollectorRegistry()
    registry.register(_Fixed([*families.values(), *extra]))
    return generate_latest(registry)


class _Fixed:
    """A collector of families built beforehand (the merged ones)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return iter(self.families)
