"""``pushers``: the transport base node, the built-in amqp, wamp and zmq nodes, and custom ones."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from gos_web_socket.settings.canary import CanarySettings
from gos_web_socket.settings.errors import ConfigurationError
from gos_web_socket.settings.nodes import BUILTIN_PUSHERS, Node, describe

logger = logging.getLogger("gos_web_socket.settings.models")
"""The name the deprecated-key warning has always had (README: logger ``settings.models``)."""


class TransportSettings(Node):
    """The base of a pusher node ``pushers.<name>``; a custom transport subclasses it.

    A node written in a config file is enabled unless it says ``enabled: false`` (Symfony's
    ``canBeEnabled()``); read yours with ``settings.pushers.node("<name>", YourSettings)``.
    """

    enabled: bool = True
    # How push_sync() waits (app.transports.pusher.Pusher; docs/pushers.md).
    confirm_mode: Literal["wait", "background"] = Field(
        default="wait",
        description="wait: push_sync() returns once the transport confirmed the push; "
        "background: once the pusher's loop has it (flush() reports failures)",
    )
    max_in_flight: int = Field(
        default=1000, ge=1, le=1_000_000, description="background pushes not yet confirmed, at most"
    )


class StreamSettings(Node):
    """``pushers.amqp.stream``: the stream read in ``queue_mode: stream`` (docs/streams.md)."""

    name: str = Field(default="", description="stream queue name; empty: <queue_name>.stream")
    max_age: str = Field(
        default="1h", pattern=r"^[0-9]+(Y|M|D|h|m|s)$", description="x-max-age retention"
    )
    max_length_bytes: int | None = Field(
        default=None, ge=1, description="x-max-length-bytes retention"
    )
    node_name: str = Field(default="", description="this node's stable name; empty: the host name")
    state_dir: Path = Field(
        default=Path("var/gos_web_socket"), description="where a node keeps its offset"
    )
    probe_timeout: float = Field(
        default=1.0, gt=0, description="seconds to wait for one stream message"
    )
    read_timeout: float = Field(
        default=10.0,
        gt=0,
        description="seconds a read back of offsets the stream holds waits for its next message",
    )
    fill: int = Field(default=1000, ge=0, description="pushes read back into history at start")
    save_interval: float = Field(
        default=0.2, gt=0, le=60, description="seconds between writes of the node's offset file"
    )
    initial_cluster_size: int | None = Field(
        default=None, ge=1, description="nodes holding a replica (x-initial-cluster-size); all"
    )
    recover_max: int = Field(
        default=10_000,
        ge=0,
        description="offsets one recovery may read back from the stream; 0: none",
    )

    def state_name(self) -> str:
        return self.node_name or socket.gethostname()


class AmqpSettings(TransportSettings):
    enabled: bool = False
    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=5672, ge=1, le=65535)
    login: str | None = None
    password: SecretStr | None = None
    vhost: str = "/"
    # GOS documents both; aio-pika has no read or write timeout, so they are accepted and unread.
    read_timeout: int = Field(default=0, ge=0, description="GOS key, accepted and unread")
    write_timeout: int = Field(default=0, ge=0, description="GOS key, accepted and unread")
    connect_timeout: int = Field(default=0, ge=0)
    queue_name: str = Field(default="gos_websocket", min_length=1)
    exchange_name: str = Field(default="gos_websocket_exchange", min_length=1)
    # Beyond GOS: delivery guarantees and multi-node.
    push_timeout: float = Field(
        default=30.0, gt=0, description="seconds push() retries before failing"
    )
    confirm_timeout: float = Field(
        default=10.0,
        gt=0,
        description="seconds one publish waits for its confirm before it is retried",
    )
    prefetch_count: int = Field(default=100, ge=1)
    queue_mode: Literal["shared", "per_node", "stream"] = "shared"
    node_queue_expires: int = Field(
        default=60_000, ge=1000, description="ms a node's queue outlives it"
    )
    stream: StreamSettings = Field(default_factory=lambda: StreamSettings())
    dead_letter_exchange: str = Field(default="gos_websocket_dlx", min_length=1)
    dead_letter_queue: str = Field(default="gos_websocket_dead", min_length=1)
    dedup_window: int = Field(
        default=10_000, ge=0, description="message ids remembered per handler"
    )
    reconnect_interval: float = Field(
        default=1.0, gt=0, description="seconds between reconnect attempts"
    )
    binding_keys: list[str] = Field(
        default_factory=lambda: [""], min_length=1, description="keys binding queue to exchange"
    )
    canary: CanarySettings = Field(default_factory=lambda: CanarySettings())
    queue_type: Literal["classic", "quorum"] = Field(
        default="classic",
        description="the push queues' type; quorum: replicated over the cluster's nodes",
    )
    delivery_limit: int | None = Field(
        default=None,
        ge=1,
        description="quorum only: deliveries before dead-lettering (x-delivery-limit)",
    )
    nodes: list[str] = Field(
        default_factory=list,
        description="brokers of a cluster as host:port; empty: the one at host and port",
    )

    @model_validator(mode="after")
    def _one_form_of_address(self) -> Self:
        # The shipped YAML writes host and port at their defaults: only other values clash.
        if self.nodes and (self.host, self.port) != ("127.0.0.1", 5672):
            raise ValueError(
                f"nodes {self.nodes} and host/port {self.host}:{self.port} are both set; "
                "allowed: nodes (a list of host:port) or host and port (one broker)"
            )
        for node in self.nodes:
            host, _, port = node.rpartition(":")
            if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
                raise ValueError(f"nodes: {node!r} is not host:port (port 1-65535)")
        return self

    @model_validator(mode="after")
    def _delivery_limit_on_quorum(self) -> Self:
        if self.delivery_limit is not None and self.queue_type != "quorum":
            raise ValueError(
                f"delivery_limit {self.delivery_limit} needs queue_type quorum (it is "
                f"{self.queue_type}); allowed: delivery_limit with queue_type: quorum"
            )
        return self

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """The brokers to try, in order: ``nodes``, or ``host`` and ``port``."""
        if not self.nodes:
            return [(self.host, self.port)]
        return [(node.rpartition(":")[0], int(node.rpartition(":")[2])) for node in self.nodes]

    @model_validator(mode="after")
    def _credentials_when_enabled(self) -> Self:
        if self.enabled:
            missing = [key for key in ("login", "password") if getattr(self, key) is None]
            if missing:
                raise ValueError(f"{' and '.join(missing)} required when amqp is enabled")
        return self


class WampSettings(TransportSettings):
    enabled: bool = False
    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=1337, ge=1, le=65535)
    ssl: bool = False
    origin: str | None = None
    token: SecretStr | None = None
    """A JWT for a server with authentication (sent as ``Authorization: Bearer``); with role
    ``ROLE_GOS_PUSHER`` its PUBLISH passes every route's publish rule (it is a push)."""
    # Beyond GOS: bounded waits and reconnects.
    timeout: float = Field(
        default=5.0, gt=0, description="seconds a push may wait for the connection"
    )
    max_backoff: float = Field(default=5.0, gt=0)


class ZmqSettings(TransportSettings):
    enabled: bool = True
    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=5555, ge=1, le=65535)
    persistent: bool = True
    protocol: Literal["tcp", "ipc", "inproc", "pgm", "epgm"] = "tcp"
    linger: int = Field(default=-1, ge=-1)
    # Beyond GOS: a send never blocks forever.
    send_timeout: float = Field(default=2.0, gt=0, description="seconds a push may wait for a peer")
    canary: CanarySettings = Field(
        default_factory=lambda: CanarySettings(interval=0),
        description="off by default: ZeroMQ drops frames under load (at-most-once)",
    )


N = TypeVar("N", bound=BaseModel)


class CustomNode(BaseModel):
    """A ``pushers.<name>`` node no built-in model claims: kept as given, ``enabled`` checked."""

    model_config = ConfigDict(extra="allow")

    enabled: bool = True


class PushersSettings(Node):
    """``pushers``: the built-in amqp, wamp and zmq nodes plus any custom transport's node."""

    model_config = ConfigDict(extra="allow")
    # pydantic's documented way to type the extras; pyright sees a narrowed override
    __pydantic_extra__: dict[str, CustomNode] = Field(init=False)  # pyright: ignore[reportIncompatibleVariableOverride]

    amqp: AmqpSettings = Field(default_factory=AmqpSettings)
    wamp: WampSettings = Field(default_factory=WampSettings)
    zmq: ZmqSettings = Field(default_factory=ZmqSettings)

    @model_validator(mode="before")
    @classmethod
    def _drop_default_keys(cls, data: Any) -> Any:
        # GOS 1.x/2.x documented `default:` under each pusher, marked "Unused"; accept those files.
        if not isinstance(data, Mapping):
            return data
        dropped = [
            name
            for name in BUILTIN_PUSHERS
            if isinstance(data.get(name), Mapping) and "default" in data[name]
        ]
        if not dropped:
            return data
        logger.warning(
            "deprecated config key ignored: %s (unused in GOS; a configured pusher is enabled, "
            "`enabled: false` disables it)",
            ", ".join(f"pushers.{name}.default" for name in dropped),
        )
        cleaned = {n: {k: v for k, v in data[n].items() if k != "default"} for n in dropped}
        return {**data, **cleaned}

    @property
    def custom(self) -> dict[str, CustomNode]:
        return dict(self.__pydantic_extra__ or {})

    def enabled_names(self) -> list[str]:
        """Enabled pushers: the built-in ones, then custom nodes in config order."""
        builtin = [name for name in BUILTIN_PUSHERS if getattr(self, name).enabled]
        return builtin + [name for name, node in self.custom.items() if node.enabled]

    def node(self, name: str, model: type[N]) -> N:
        """The ``pushers.<name>`` node validated against a transport's own model.

        A missing node gives the model's defaults. Raises:
            ConfigurationError: one line per problem, key paths under ``pushers.<name>.``.
        """
        if name in BUILTIN_PUSHERS:
            builtin = getattr(self, name)
            if not isinstance(builtin, model):
                raise TypeError(f"pushers.{name} is a {type(builtin).__name__}, not a {model}")
            return builtin
        raw = self.custom.get(name)
        try:
            return model.model_validate(raw.model_dump(exclude_unset=True) if raw else {})
        except ValidationError as exc:
            raise ConfigurationError(
                describe(error, model, ("pushers", name)) for error in exc.errors()
            ) from None

    def unclaimed(self, known_names: Iterable[str]) -> list[str]:
        """Custom node names no transport in ``known_names`` reads (the container decides)."""
        known = set(known_names)
        return [name for name in self.custom if name not in known]
