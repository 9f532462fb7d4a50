"""Typed settings: the GOS ``gos_web_socket`` tree, read from YAML and overridden by environment."""

from __future__ import annotations

import contextvars
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from app.exceptions import ConfigurationError

SETTINGS_DIR = Path(__file__).resolve().parent
DEFAULT_CONFIG = SETTINGS_DIR / "gos_web_socket.yaml"
DEFAULT_ROUTING = SETTINGS_DIR / "routing.yaml"
ENV_PREFIX = "GOS_WEB_SOCKET__"

_config_file: contextvars.ContextVar[Path] = contextvars.ContextVar(
    "gos_config_file", default=DEFAULT_CONFIG
)

Port = int  # validated by Field bounds where used


class _Node(BaseModel):
    """A config node: unknown keys are errors, as in Symfony's config tree."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


class TlsSettings(_Node):
    enabled: bool = False
    certfile: Path | None = None
    keyfile: Path | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _files_when_enabled(self) -> Self:
        if self.enabled and self.certfile is None:
            raise ValueError("certfile is required when tls.enabled is true")
        return self


class RouterSettings(_Node):
    resources: list[Path] = Field(default_factory=lambda: [DEFAULT_ROUTING])


class HttpSettings(_Node):
    """The HTTP server beside the WebSocket one: the demo page, the browser client, health."""

    enabled: bool = True
    host: str = Field("127.0.0.1", min_length=1)
    port: int = Field(8080, ge=0, le=65535, description="0 picks a free port")


class MetricsSettings(_Node):
    """The operations listener: Prometheus text on ``/metrics``, readiness on ``/health``."""

    enabled: bool = True
    host: str = Field("127.0.0.1", min_length=1)
    port: int = Field(9337, ge=0, le=65535, description="0 picks a free port")
    profile_interval: float = Field(5.0, gt=0, description="seconds between `server -m` reports")


class LimitsSettings(_Node):
    """Per-connection budgets against hostile clients (docs/security.md: each default, why,
    and the close code a client gets at the limit)."""

    messages_per_second: float = Field(
        100.0, gt=0, description="sustained inbound WAMP messages per second; over: close 1008"
    )
    messages_burst: int = Field(
        200, ge=1, description="messages a client may send at once (a page subscribing)"
    )
    pings_per_second: float = Field(1.0, gt=0, description="sustained pings; over: close 1008")
    pings_burst: int = Field(5, ge=1, description="pings a client may send at once")
    max_prefixes: int = Field(64, ge=0, description="WAMP v1 PREFIX entries; over: close 1008")
    max_prefix_bytes: int = Field(
        16_384, ge=0, description="bytes of all PREFIX entries together; over: close 1008"
    )
    max_subscriptions: int = Field(
        256, ge=1, description="topics one client may subscribe to; over: close 1008"
    )
    max_pending_calls: int = Field(
        16, ge=1, description="RPC calls of one client not yet answered; over: close 1008"
    )
    max_queued_jobs: int = Field(
        64, ge=1, description="messages of one client waiting for its worker; over: close 1008"
    )
    json_max_depth: int = Field(
        64, ge=2, le=500, description="nesting of a client's JSON frame; deeper: close 1007"
    )
    handshake_max_bytes: int = Field(
        16_384, ge=1024, description="bytes of the HTTP upgrade request head; over: HTTP 431"
    )
    handshake_timeout: float = Field(
        5.0, gt=0, description="seconds from TCP accept to a finished handshake; then: drop"
    )
    messages_per_turn: int = Field(
        8, ge=1, description="messages of one client handled per event-loop turn (fairness)"
    )
    zmq_max_message_size: int = Field(
        1_048_576, ge=128, description="bytes of one ZeroMQ push frame (ZMQ_MAXMSGSIZE)"
    )


class ServerSettings(_Node):
    host: str = Field("127.0.0.1", min_length=1)
    port: int = Field(1337, ge=0, le=65535, description="0 picks a free port")
    origin_check: bool = False
    origins: list[str] = Field(default_factory=list)
    ip_address_check: bool = False
    blocked_ip_addresses: list[str] = Field(default_factory=list)
    keepalive_ping: bool = False
    keepalive_interval: int = Field(30, ge=1)
    tls: TlsSettings = Field(default_factory=TlsSettings)
    router: RouterSettings = Field(default_factory=RouterSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    max_frame_size: int = Field(65536, ge=128, description="bytes; larger frames close with 1009")
    max_message_size: int = Field(
        65536, ge=128, description="bytes; larger messages close with 1009"
    )
    max_outgoing_buffer: int = Field(
        1_048_576, ge=4096, description="bytes queued to one client before it is cut off"
    )
    shutdown_timeout: float = Field(5.0, gt=0)
    realm: str = Field("realm1", min_length=1, description="the one realm WAMP v2 clients join")
    limits: LimitsSettings = Field(default_factory=LimitsSettings)


class AmqpSettings(_Node):
    enabled: bool = False
    host: str = Field("127.0.0.1", min_length=1)
    port: int = Field(5672, ge=1, le=65535)
    login: str | None = None
    password: SecretStr | None = None
    vhost: str = "/"
    read_timeout: int = Field(0, ge=0)
    write_timeout: int = Field(0, ge=0)
    connect_timeout: int = Field(0, ge=0)
    queue_name: str = Field("gos_websocket", min_length=1)
    exchange_name: str = Field("gos_websocket_exchange", min_length=1)
    # Beyond GOS: delivery guarantees and multi-node.
    push_timeout: float = Field(30.0, gt=0, description="seconds push() retries before failing")
    prefetch_count: int = Field(100, ge=1)
    queue_mode: Literal["shared", "per_node"] = "shared"
    node_queue_expires: int = Field(60_000, ge=1000, description="ms a node's queue outlives it")
    dead_letter_exchange: str = Field("gos_websocket_dlx", min_length=1)
    dead_letter_queue: str = Field("gos_websocket_dead", min_length=1)
    dedup_window: int = Field(10_000, ge=0, description="message ids remembered per handler")
    reconnect_interval: float = Field(1.0, gt=0, description="seconds between reconnect attempts")
    binding_keys: list[str] = Field(
        default_factory=lambda: [""], min_length=1, description="keys binding queue to exchange"
    )

    @model_validator(mode="after")
    def _credentials_when_enabled(self) -> Self:
        if self.enabled:
            missing = [key for key in ("login", "password") if getattr(self, key) is None]
            if missing:
                raise ValueError(f"{' and '.join(missing)} required when amqp is enabled")
        return self


class WampSettings(_Node):
    enabled: bool = False
    host: str = Field("127.0.0.1", min_length=1)
    port: int = Field(1337, ge=1, le=65535)
    ssl: bool = False
    origin: str | None = None
    # Beyond GOS: bounded waits and reconnects.
    timeout: float = Field(5.0, gt=0, description="seconds a push may wait for the connection")
    max_backoff: float = Field(5.0, gt=0)


class ZmqSettings(_Node):
    enabled: bool = True
    host: str = Field("127.0.0.1", min_length=1)
    port: int = Field(5555, ge=1, le=65535)
    persistent: bool = True
    protocol: Literal["tcp", "ipc", "inproc", "pgm", "epgm"] = "tcp"
    linger: int = Field(-1, ge=-1)
    # Beyond GOS: a send never blocks forever.
    send_timeout: float = Field(2.0, gt=0, description="seconds a push may wait for a peer")


class PushersSettings(_Node):
    amqp: AmqpSettings = Field(default_factory=AmqpSettings)
    wamp: WampSettings = Field(default_factory=WampSettings)
    zmq: ZmqSettings = Field(default_factory=ZmqSettings)

    def enabled_names(self) -> list[str]:
        return [name for name in ("amqp", "wamp", "zmq") if getattr(self, name).enabled]


class RateLimitSettings(_Node):
    """At most ``burst`` records of one message template per ``interval`` seconds."""

    burst: int = Field(10, ge=0, description="0 turns rate limiting off")
    interval: float = Field(60.0, gt=0)


class LoggingSettings(_Node):
    format: Literal["kv", "json"] = "kv"
    level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)


class Settings(BaseSettings):
    """The whole ``gos_web_socket`` tree.

    Sources, strongest first: constructor arguments, ``GOS_WEB_SOCKET__A__B`` environment
    variables, then the YAML file (``settings/gos_web_socket.yaml`` or ``--config PATH``).
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    server: ServerSettings = Field(default_factory=ServerSettings)
    pushers: PushersSettings = Field(default_factory=PushersSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    # GOS keeps these two at the root; ``server.origins`` etc. are accepted too and merged.
    origins: list[str] = Field(default_factory=list)
    blocked_ip_addresses: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _no_default_origins(self) -> Self:
        for key in ("origins",):
            for origin in [*self.origins, *self.server.origins]:
                if origin in ("localhost", "127.0.0.1"):
                    raise ValueError(f"{key}: {origin} is added by default")
        return self

    @property
    def allowed_origins(self) -> list[str]:
        return ["localhost", "127.0.0.1", *self.origins, *self.server.origins]

    @property
    def blocked_ips(self) -> list[str]:
        return [*self.blocked_ip_addresses, *self.server.blocked_ip_addresses]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_source = YamlConfigSettingsSource(
            settings_cls, yaml_file=_config_file.get(), yaml_config_section="gos_web_socket"
        )
        return (init_settings, env_settings, yaml_source)


def _describe(error: Any) -> str:
    path = ".".join(str(part) for part in error["loc"]) or "gos_web_socket"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] in ("missing",):
        return f"{path}: missing; {message.lower()}"
    value = error.get("input")
    if isinstance(value, dict):  # a node-level rule: the node itself is the value
        return f"{path}: {message}"
    return f"{path}: {value!r} is not allowed: {message}"


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read and validate the settings; the one place that touches the file and environment.

    Raises:
        ConfigurationError: one line per problem (key path, value, what is allowed).
    """
    config_file = Path(path) if path is not None else DEFAULT_CONFIG
    if not config_file.is_file():
        raise ConfigurationError([f"--config: {str(config_file)!r} is not a readable file"])
    token = _config_file.set(config_file)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigurationError(_describe(error) for error in exc.errors()) from None
    except (OSError, ValueError) as exc:  # YAML syntax errors surface as ValueError subclasses
        raise ConfigurationError([f"{config_file}: {exc}"]) from None
    finally:
        _config_file.reset(token)
