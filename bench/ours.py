"""Our side, built from the toolkit's own classes with benchmark settings."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from gos_web_socket.settings import DEFAULT_ROUTING, AmqpSettings, ZmqSettings
from gos_web_socket.settings.models import StreamSettings


def amqp_settings(url: str, tag: str = "", stream: dict[str, Any] | None = None) -> AmqpSettings:
    """The shared GOS queue; with ``tag``, ``queue_mode: stream`` on a stream of its own
    (``gos_websocket.<tag>.stream``) and an offset file in a temporary directory (``stream``:
    other ``pushers.amqp.stream`` settings, such as ``fill`` or ``node_name``)."""
    parts = urlsplit(url)
    extra: dict[str, Any] = {}
    if tag:
        state = Path(tempfile.gettempdir()) / f"gos-bench-{tag}"
        extra = {
            "queue_mode": "stream",
            "queue_name": f"gos_websocket.{tag}",
            "stream": StreamSettings(
                **{"state_dir": state, "node_name": f"bench-{tag}", **(stream or {})}
            ),
        }
    return AmqpSettings(
        enabled=True,
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5672,
        login=parts.username or "guest",
        password=parts.password or "guest",
        **extra,
    )


def zmq_settings(port: int) -> ZmqSettings:
    return ZmqSettings(enabled=True, host="127.0.0.1", port=port, linger=0)


def router() -> Any:
    """The demo routes (acme_topic: acme/channel/{room})."""
    from gos_web_socket.app.router import Router, load_routes
    from gos_web_socket.settings import DEFAULT_ROUTING

    return Router(load_routes(DEFAULT_ROUTING))


def make_pusher(transport: str, amqp_url: str = "", zmq_port: int = 0, tag: str = "") -> Any:
    """Our AmqpPusher or ZmqPusher on the demo routes (``stream``: AMQP in stream mode)."""
    if transport in ("amqp", "stream"):
        from gos_web_socket.app.transports.amqp.pusher import AmqpPusher

        return AmqpPusher(amqp_settings(amqp_url, tag), router())
    from gos_web_socket.app.transports.zmq.pusher import ZmqPusher

    return ZmqPusher(zmq_settings(zmq_port), router())


def make_runtime(
    transport: str,
    amqp_url: str = "",
    zmq_port: int = 0,
    tag: str = "",
    history: bool = False,
    stream: dict[str, Any] | None = None,
) -> Any:
    """The runtime of the project's container, as `gos-websocket server` builds it: demo topic
    and RPC, one push handler (AMQP or ZeroMQ), the metrics listener and the demo page.

    Only the addresses differ (free ports) and the other transports are off;
    ``max_outgoing_buffer`` stays at its default (1 MiB), so the slow-reader guard runs on every
    write as in production.
    """
    from gos_web_socket import containers
    from gos_web_socket.settings import Settings

    off = {"enabled": False}
    pushers: dict[str, Any] = {"amqp": off, "wamp": off, "zmq": off}
    if transport in ("amqp", "stream"):
        pushers["amqp"] = amqp_settings(amqp_url, tag, stream)
    else:
        pushers["zmq"] = zmq_settings(zmq_port)
    server: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "http": {"host": "127.0.0.1", "port": 0},
        "metrics": {"host": "127.0.0.1", "port": 0},
    }
    if history:  # the demo routes, acme_topic keeping 5,000 pushes per channel for 10 minutes
        routes = yaml.safe_load(DEFAULT_ROUTING.read_text())
        routes["acme_topic"]["history"] = {"size": 5000, "ttl": 600}
        path = Path(tempfile.mkdtemp(prefix="gos-bench-routes-")) / "routing.yaml"
        path.write_text(yaml.safe_dump(routes))
        server["router"] = {"resources": [str(path)]}
    settings = Settings(server=server, pushers=pushers)
    container = containers.create_container()
    container.settings.override(settings)
    return containers.get_service(container, "gos_web_socket.runtime")
