"""``server``: the WebSocket server's node and its children (TLS, routing files, the HTTP and
operations listeners; the budgets are in ``settings.limits``)."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field, field_validator, model_validator

from gos_web_socket.settings.dealer import DealerSettings
from gos_web_socket.settings.limits import LimitsSettings
from gos_web_socket.settings.nodes import DEFAULT_ROUTING, Node


class TlsSettings(Node):
    enabled: bool = False
    certfile: Path | None = None
    keyfile: Path | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _files_when_enabled(self) -> Self:
        if self.enabled and self.certfile is None:
            raise ValueError("certfile is required when tls.enabled is true")
        return self


class RouterSettings(Node):
    resources: list[Path] = Field(default_factory=lambda: [DEFAULT_ROUTING])


class HttpSettings(Node):
    """The HTTP server beside the WebSocket one: the demo page, the browser client, health."""

    enabled: bool = True
    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=8080, ge=0, le=65535, description="0 picks a free port")
    demo_tokens: bool = False
    """``make run`` only: ``/demo/token?user=ID`` signs a token for anyone (app.auth.demo)."""


class MetricsSettings(Node):
    """The operations listener: Prometheus text on ``/metrics``, readiness on ``/health``."""

    enabled: bool = True
    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=9337, ge=0, le=65535, description="0 picks a free port")
    profile_interval: float = Field(
        default=5.0, gt=0, description="seconds between `server -m` reports"
    )


class ServerSettings(Node):
    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=1337, ge=0, le=65535, description="0 picks a free port")
    origin_check: bool = False
    origins: list[str] = Field(default_factory=list)
    ip_address_check: bool = False
    blocked_ip_addresses: list[str] = Field(default_factory=list)
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="proxy addresses or networks whose X-Forwarded-For / Forwarded is believed",
    )
    keepalive_ping: bool = False
    keepalive_interval: int = Field(default=30, ge=1)
    tls: TlsSettings = Field(default_factory=TlsSettings)
    router: RouterSettings = Field(default_factory=RouterSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    max_frame_size: int = Field(
        default=65536, ge=128, description="bytes; larger frames close with 1009"
    )
    max_message_size: int = Field(
        default=65536, ge=128, description="bytes; larger messages close with 1009"
    )
    max_outgoing_buffer: int = Field(
        default=1_048_576, ge=4096, description="bytes a client may leave unread for a while"
    )
    slow_reader_timeout: float = Field(
        default=2.0, gt=0, description="seconds over max_outgoing_buffer before a client is cut off"
    )
    max_outgoing_total: int = Field(
        default=64 << 20,
        ge=0,
        description="bytes queued to all clients together; pushes wait over half of it, the "
        "client holding most is cut off over it; 0: no such budget",
    )
    shutdown_timeout: float = Field(default=5.0, gt=0)
    compression: bool = Field(
        default=False,
        description="permessage-deflate for clients that offer it (EVENTs compressed once)",
    )
    realm: str = Field(
        default="realm1", min_length=1, description="the one realm WAMP v2 clients join"
    )
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    dealer: DealerSettings = Field(default_factory=DealerSettings)
    demo: bool = Field(
        default=True, description="register the shipped acme.topic / acme.rpc handlers"
    )
    container: str | None = Field(
        default=None, description="your container, 'package.module:Class' (subclass of ours)"
    )
    workers: int | Literal["auto"] = Field(
        default=1, description="server processes on the port (SO_REUSEPORT); auto: one per core"
    )
    listen_backlog: int = Field(
        default=4096,
        ge=1,
        description="connections the kernel completes before accept (capped by somaxconn)",
    )
    event_loop: Literal["auto", "asyncio", "uvloop"] = Field(
        default="auto", description="auto: uvloop when installed, else asyncio"
    )
    gc_full_every: float = Field(
        default=60.0,
        ge=0,
        description="seconds between full garbage collections, run when no storm is under way "
        "(0: CPython's own trigger)",
    )

    @field_validator("workers", mode="before")
    @classmethod
    def _workers(cls, value: Any) -> Any:
        # One readable line instead of pydantic's two (one per member of the union).
        if value == "auto":
            return value
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        raise ValueError("a number of processes (1 or more) or 'auto'")

    @property
    def worker_count(self) -> int:
        """``workers`` as a number: ``auto`` is the cores this process may run on."""
        if self.workers != "auto":
            return self.workers
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not Linux
            return max(1, os.cpu_count() or 1)

    @model_validator(mode="after")
    def _outgoing_total(self) -> Self:
        total, one = self.max_outgoing_total, self.max_outgoing_buffer
        if total and total < 2 * one:
            message = (
                f"max_outgoing_total ({total}) must be 0 (no budget) or at least twice "
                f"max_outgoing_buffer ({one}): one slow client would stop every push"
            )
            raise ValueError(message)
        return self

    @model_validator(mode="after")
    def _proxy_networks(self) -> Self:
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                message = f"trusted_proxies: {proxy!r} is not an IP address or network (CIDR)"
                raise ValueError(message) from None
        return self
