"""Typed settings: the GOS ``gos_web_socket`` tree, read from YAML and overridden by environment.

The root model and its loader live here; the nodes live in ``settings.nodes`` (the base),
``settings.server``, ``settings.limits``, ``settings.pushers`` and ``settings.auth``, and every
name is importable from here as before.
"""

from __future__ import annotations

import contextvars
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from gos_web_socket.settings.auth import AuthenticationSettings
from gos_web_socket.settings.errors import ConfigurationError
from gos_web_socket.settings.limits import LimitsSettings
from gos_web_socket.settings.mercure import MercureSettings
from gos_web_socket.settings.nodes import (
    BUILTIN_PUSHERS,
    DEFAULT_CONFIG,
    DEFAULT_ROUTING,
    ENV_PREFIX,
    ROOT_KEY,
    SETTINGS_DIR,
    Node,
    describe,
)
from gos_web_socket.settings.presence import PresenceSettings
from gos_web_socket.settings.pushers import (
    AmqpSettings,
    PushersSettings,
    StreamSettings,
    TransportSettings,
    WampSettings,
    ZmqSettings,
)
from gos_web_socket.settings.server import (
    HttpSettings,
    MetricsSettings,
    RouterSettings,
    ServerSettings,
    TlsSettings,
)

__all__ = [
    "BUILTIN_PUSHERS",
    "DEFAULT_CONFIG",
    "DEFAULT_ROUTING",
    "ENV_PREFIX",
    "ROOT_KEY",
    "SETTINGS_DIR",
    "AmqpSettings",
    "HttpSettings",
    "LimitsSettings",
    "LoggingSettings",
    "MetricsSettings",
    "PresenceSettings",
    "PushersSettings",
    "RateLimitSettings",
    "RouterSettings",
    "ServerSettings",
    "Settings",
    "StreamSettings",
    "TlsSettings",
    "TransportSettings",
    "WampSettings",
    "ZmqSettings",
    "describe",
    "load_settings",
    "read_config_file",
]

_file_tree: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "gos_file_tree", default=None
)
"""The ``gos_web_socket`` mapping of the file ``load_settings`` read; None: the shipped file."""


class RateLimitSettings(Node):
    """At most ``burst`` records of one message template per ``interval`` seconds."""

    burst: int = Field(default=10, ge=0, description="0 turns rate limiting off")
    interval: float = Field(default=60.0, gt=0)


class LoggingSettings(Node):
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
    mercure: MercureSettings = Field(default_factory=MercureSettings)
    presence: PresenceSettings = Field(default_factory=PresenceSettings)

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


logger = logging.getLogger(__name__)


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


def _enable_present_jwt(tree: dict[str, Any]) -> None:
    """A ``providers.jwt`` node written in the file is enabled unless it says otherwise: the
    pushers' rule (an environment variable alone never enables it)."""
    node: Any = tree
    for key in ("authentication", "providers"):
        node = node.get(key) if isinstance(node, dict) else None
    if isinstance(node, dict) and isinstance(node.get("jwt"), dict):
        node["jwt"].setdefault("enabled", True)


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
    _enable_present_jwt(tree)
    _resolve_paths(tree, path.resolve().parent)
    return tree


def misspelled_variables(environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """``(name, meant)`` of each variable that looks like a setting under a wrong prefix
    (``GOS_WEBSOCKET__SERVER__PORT``): pydantic-settings would ignore it without a word."""
    letters = ENV_PREFIX.replace("_", "")
    found = []
    for name in environ:
        upper = name.upper()
        if upper.startswith(ENV_PREFIX) or not upper.replace("_", "").startswith(letters):
            continue
        index, matched = 0, 0
        while matched < len(letters):  # skip the prefix's letters and whatever "_" are among them
            matched += upper[index] != "_"
            index += 1
        rest = upper[index:].lstrip("_")
        if rest:
            found.append((name, ENV_PREFIX + rest))
    return found


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read and validate the settings; the one place that touches the file and environment.

    Raises:
        ConfigurationError: one line per problem (key path, value, what is allowed).
    """
    config_file = Path(path) if path is not None else DEFAULT_CONFIG
    if not config_file.is_file():
        raise ConfigurationError([f"--config: {str(config_file)!r} is not a readable file"])
    for name, meant in misspelled_variables(os.environ):
        logger.warning(
            "environment variable %s ignored: settings variables start with %s (did you mean %s?)",
            name,
            ENV_PREFIX,
            meant,
        )
    token = _file_tree.set(read_config_file(config_file))
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigurationError(describe(error, Settings) for error in exc.errors()) from None
    finally:
        _file_tree.reset(token)
