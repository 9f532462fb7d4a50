"""Settings models and the loader; the default YAML files live beside them."""

if __name__ != "gos_web_socket.settings":  # as app/__init__.py: one name for every module
    raise ImportError(f"import gos_web_socket.settings, not {__name__}")

from gos_web_socket.settings.models import (
    BUILTIN_PUSHERS,
    DEFAULT_CONFIG,
    DEFAULT_ROUTING,
    AmqpSettings,
    HttpSettings,
    LoggingSettings,
    MetricsSettings,
    PushersSettings,
    RateLimitSettings,
    RouterSettings,
    ServerSettings,
    Settings,
    TlsSettings,
    TransportSettings,
    WampSettings,
    ZmqSettings,
    load_settings,
)

__all__ = [
    "BUILTIN_PUSHERS",
    "DEFAULT_CONFIG",
    "DEFAULT_ROUTING",
    "AmqpSettings",
    "HttpSettings",
    "LoggingSettings",
    "MetricsSettings",
    "PushersSettings",
    "RateLimitSettings",
    "RouterSettings",
    "ServerSettings",
    "Settings",
    "TlsSettings",
    "TransportSettings",
    "WampSettings",
    "ZmqSettings",
    "load_settings",
]
