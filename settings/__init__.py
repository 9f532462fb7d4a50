"""Settings models and the loader; the default YAML files live beside them."""

from settings.models import (
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
    WampSettings,
    ZmqSettings,
    load_settings,
)

__all__ = [
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
    "WampSettings",
    "ZmqSettings",
    "load_settings",
]
