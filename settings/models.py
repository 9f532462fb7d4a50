"""Typed settings: the GOS ``gos_web_socket`` tree, read from YAML and overridden by environment."""

from __future__ import annotations

import contextvars
import inspect
import ipaddress
import logging
import os
import socket
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, Self, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from gos_web_socket.settings.auth import AuthenticationSettings
from gos_web_socket.settings.errors import ConfigurationError

logger = logging.getLogger(__name__)

SETTINGS_DIR = Path(__file__).resolve().parent
DEFAULT_CONFIG = SETTINGS_DIR / "gos_web_socket.yaml"
DEFAULT_ROUTING = SETTINGS_DIR / "routing.yaml"
ENV_PREFIX = "GOS_WEB_SOCKET__"
ROOT_KEY = "gos_web_socket"
BUILTIN_PUSHERS = ("amqp", "wamp", "zmq")

_file_tree: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "gos_file_tree", default=None
)
"""The ``gos_web_socket`` mapping of the file ``load_settings`` read; None: the shipped file."""


class _Node(BaseModel):
    """A config node: unknown keys are errors, as in Symfony's config tree."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_node(cls, data: Any) -> Any:
        # `tls:` with nothing under it (children commented out) is an empty node, as in Symfony.
        return {} if data is None else data


class TransportSettings(_Node):
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
    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=8080, ge=0, le=65535, description="0 picks a free port")
    demo_tokens: bool = False
    """``make run`` only: ``/demo/token?user=ID`` signs a token for anyone (app.auth.demo)."""


class MetricsSettings(_Node):
    """The operations listener: Prometheus text on ``/metrics``, readiness on ``/health``."""

    enabled: bool = True
    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=9337, ge=0, le=65535, description="0 picks a free port")
    profile_interval: float = Field(
        default=5.0, gt=0, description="seconds between `server -m` reports"
    )


class LimitsSettings(_Node):
    """Per-connection budgets against hostile clients (docs/security.md: each default, why,
    and the close code a client gets at the limit)."""

    messages_per_second: float = Field(
        default=100.0,
        gt=0,
        description="sustained inbound WAMP messages per second; over: close 1008",
    )
    messages_burst: int = Field(
        default=200, ge=1, description="messages a client may send at once (a page subscribing)"
    )
    pings_per_second: float = Field(
        default=1.0, gt=0, description="sustained pings; over: close 1008"
    )
    pings_burst: int = Field(
        default=16, ge=1, description="pings a client may send at once (a test suite sends 10)"
    )
    frames_per_second: float = Field(
        default=500.0,
        gt=0,
        description="sustained inbound frames (fragments and control frames count); over: 1008",
    )
    frames_burst: int = Field(
        default=500, ge=1, description="frames a client may send at once (>= messages_burst)"
    )
    frames_per_turn: int = Field(
        default=16, ge=1, description="frames of one client parsed per event-loop turn (fairness)"
    )
    read_bytes_per_turn: int = Field(
        default=65_536,
        ge=1024,
        description="bytes of one client parsed per event-loop turn (a larger frame still whole)",
    )
    max_prefixes: int = Field(
        default=64, ge=0, description="WAMP v1 PREFIX entries; over: close 1008"
    )
    max_prefix_bytes: int = Field(
        default=16_384, ge=0, description="bytes of all PREFIX entries together; over: close 1008"
    )
    max_subscriptions: int = Field(
        default=256, ge=1, description="topics one client may subscribe to; over: close 1008"
    )
    max_pending_calls: int = Field(
        default=16, ge=1, description="RPC calls of one client not yet answered; over: close 1008"
    )
    max_queued_jobs: int = Field(
        default=256,
        ge=1,
        description="messages of one client waiting for its worker; over: close 1008",
    )
    json_max_depth: int = Field(
        default=64, ge=2, le=500, description="nesting of a client's JSON frame; deeper: close 1007"
    )
    handshake_max_bytes: int = Field(
        default=16_384,
        ge=1024,
        description="bytes of the HTTP upgrade request head; over: HTTP 431",
    )
    handshake_timeout: float = Field(
        default=5.0, gt=0, description="seconds from TCP accept to a finished handshake; then: drop"
    )
    handshakes_in_progress: int = Field(
        default=2048,
        ge=1,
        description="opening handshakes a process works on at once; later ones wait, unread",
    )
    messages_per_turn: int = Field(
        default=8, ge=1, description="messages of one client handled per event-loop turn (fairness)"
    )
    zmq_max_message_size: int = Field(
        default=1_048_576,
        ge=128,
        description="bytes of one ZeroMQ push frame: the pusher refuses, the server drops beyond",
    )

    @model_validator(mode="after")
    def _frames_cover_messages(self) -> Self:
        """Every message is at least one frame: fewer frames than messages would close a page
        for a burst its message budget allows."""
        if self.frames_burst < self.messages_burst:
            message = (
                f"frames_burst ({self.frames_burst}) must be at least messages_burst "
                f"({self.messages_burst}): every message is at least one frame"
            )
            raise ValueError(message)
        return self


class ServerSettings(_Node):
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


class StreamSettings(_Node):
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
    fill: int = Field(default=1000, ge=0, description="pushes read back into history at start")
    save_interval: float = Field(
        default=0.2, gt=0, le=60, description="seconds between writes of the node's offset file"
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


N = TypeVar("N", bound=BaseModel)


class _CustomNode(BaseModel):
    """A ``pushers.<name>`` node no built-in model claims: kept as given, ``enabled`` checked."""

    model_config = ConfigDict(extra="allow")

    enabled: bool = True


class PushersSettings(_Node):
    """``pushers``: the built-in amqp, wamp and zmq nodes plus any custom transport's node."""

    model_config = ConfigDict(extra="allow")
    # pydantic's documented way to type the extras; pyright sees a narrowed override
    __pydantic_extra__: dict[str, _CustomNode] = Field(init=False)  # pyright: ignore[reportIncompatibleVariableOverride]

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
    def custom(self) -> dict[str, _CustomNode]:
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


class RateLimitSettings(_Node):
    """At most ``burst`` records of one message template per ``interval`` seconds."""

    burst: int = Field(default=10, ge=0, description="0 turns rate limiting off")
    interval: float = Field(default=60.0, gt=0)


class LoggingSettings(_Node):
    format: Literal["kv", "json"] = "kv"
    level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)


class Settings(BaseSettings):
    """The whole ``gos_web_socket`` tree.

    Sources, strongest first: constructor arguments, ``GOS_WEB_SOCKET__A__B`` environment
    variables, then the YAML file (``settings/gos_web_socket.yaml`` or ``--config PATH``) as
    ``read_config_file`` normalises it: pusher nodes written there are enabled, relative paths
    point beside the file. Environment variables only override values.
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
    authentication: AuthenticationSettings = Field(default_factory=AuthenticationSettings)

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
        tree = _file_tree.get()
        file_source = InitSettingsSource(
            settings_cls, init_kwargs=read_config_file(DEFAULT_CONFIG) if tree is None else tree
        )
        return (init_settings, env_settings, file_source)


def _yaml_error(path: Path, exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
    if mark is None:
        return f"{path}: invalid YAML: {problem}"
    return f"{path}: invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"


def _kind(value: Any) -> str:
    kinds = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}
    return kinds.get(type(value), f"a {type(value).__name__}")


def _enable_present_pushers(tree: dict[str, Any]) -> None:
    """A pusher node written in the file is enabled unless it says otherwise (canBeEnabled)."""
    pushers = tree.get("pushers")
    if not isinstance(pushers, dict):
        return
    for name, node in pushers.items():
        if node is None:
            pushers[name] = {"enabled": True}
        elif isinstance(node, dict):
            node.setdefault("enabled", True)


def _relative_to(base: Path, value: Any) -> Any:
    if isinstance(value, str) and value and not Path(value).is_absolute():
        return str(base / value)
    return value


def _resolve_paths(tree: dict[str, Any], base: Path) -> None:
    """Relative file paths in a config file name files beside it, not in the working directory."""
    node: Any = tree
    for key in ("authentication", "providers", "jwt"):
        node = node.get(key) if isinstance(node, dict) else None
    if isinstance(node, dict):
        jwt = node
        for key in ("public_key_file", "jwks_file"):
            if key in jwt:
                jwt[key] = _relative_to(base, jwt[key])
    server = tree.get("server")
    if not isinstance(server, dict):
        return
    router, tls = server.get("router"), server.get("tls")
    if isinstance(router, dict) and isinstance(router.get("resources"), list):
        router["resources"] = [_relative_to(base, item) for item in router["resources"]]
    if isinstance(tls, dict):
        for key in ("certfile", "keyfile"):
            if key in tls:
                tls[key] = _relative_to(base, tls[key])


def read_config_file(path: Path) -> dict[str, Any]:
    """The ``gos_web_socket`` mapping of a YAML file, normalised (enabled nodes, paths).

    Raises:
        ConfigurationError: the file cannot be read, is not YAML, or has no valid root.
    """
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(
            [f"--config: {str(path)!r} is not a readable file ({exc.strerror})"]
        ) from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigurationError([_yaml_error(path, exc)]) from None
    expected = f"expected the root key {ROOT_KEY}:"
    if document is None:
        raise ConfigurationError([f"{path}: the file is empty; {expected}"])
    if not isinstance(document, dict):
        raise ConfigurationError([f"{path}: the file holds {_kind(document)}; {expected}"])
    unknown = [key for key in document if key != ROOT_KEY]
    if unknown:
        raise ConfigurationError(
            f"{path}: unknown root key {key} (allowed: {ROOT_KEY})" for key in unknown
        )
    tree = document.get(ROOT_KEY)
    if tree is None:
        return {}
    if not isinstance(tree, dict):
        raise ConfigurationError(
            [f"{ROOT_KEY}: {tree!r} is not allowed: the node must be a mapping of settings"]
        )
    _enable_present_pushers(tree)
    _resolve_paths(tree, path.resolve().parent)
    return tree


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model class inside an annotation such as ``TlsSettings`` or ``list[X] | None``."""
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, list, dict):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def _allowed_keys(root: type[BaseModel], loc: Iterable[int | str]) -> list[str]:
    model: type[BaseModel] | None = root
    for part in loc:
        if model is None:
            return []
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        model = _model_in(field.annotation) if field is not None else None
    return list(model.model_fields) if model is not None else []


def describe(error: Any, root: type[BaseModel], prefix: tuple[str, ...] = ()) -> str:
    """One line for one pydantic error: the key path, the value, what is allowed."""
    loc = tuple(error["loc"])
    path = ".".join(str(part) for part in (*prefix, *loc)) or ROOT_KEY
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return f"unknown key {path} (allowed: {', '.join(_allowed_keys(root, loc[:-1]))})"
    if error["type"] in ("missing",):
        return f"{path}: missing; {message.lower()}"
    if error["type"] in ("model_type", "model_attributes_type", "dict_type"):
        message = "the node must be a mapping of settings"
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
    token = _file_tree.set(read_config_file(config_file))
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigurationError(describe(error, Settings) for error in exc.errors()) from None
    finally:
        _file_tree.reset(token)
