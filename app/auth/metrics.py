"""The identity metrics of one server, read at scrape time (``app.metrics`` yields them)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client.metrics_core import CounterMetricFamily, Metric

if TYPE_CHECKING:
    from app.server import WampServer


def auth_metrics(server: WampServer, namespace: str) -> Iterable[Metric]:
    """Users admitted by provider, refusals by reason, expiries, authorization refusals by verb."""
    authenticator = server.authenticator
    accepted = CounterMetricFamily(
        f"{namespace}_auth_accepted",
        "Connections authenticated, by provider (anonymous included).",
        labels=["provider"],
    )
    for provider, count in sorted(authenticator.accepted.items()):
        accepted.add_metric([provider], count)
    refused = CounterMetricFamily(
        f"{namespace}_auth_refused",
        "Connections refused by authentication, by reason (missing, expired, bad_signature...).",
        labels=["reason"],
    )
    for reason, count in sorted(authenticator.refused.items()):
        refused.add_metric([reason], count)
    denied = CounterMetricFamily(
        f"{namespace}_authz_refused",
        "Subscribes, publishes and calls refused by a route's auth rule, by verb.",
        labels=["verb"],
    )
    for verb, count in sorted(server.broker.rules.refused.items()):
        denied.add_metric([verb], count)
    expired = CounterMetricFamily(
        f"{namespace}_auth_expired",
        "Live connections closed because their token expired.",
        value=authenticator.expired,
    )
    return [accepted, refused, denied, expired]
