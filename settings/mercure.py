"""``mercure``: the Mercure hub (Server-Sent Events and HTTP publish) on the server's port.

docs/sse.md says how a Symfony app points MercureBundle at it and what each key does.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from gos_web_socket.settings.nodes import Node
from gos_web_socket.settings.pushers import TransportSettings

MIN_SECRET = 32
"""Bytes an HMAC secret needs at least (RFC 7518 section 3.2), as the JWT provider's."""


class MercureSettings(Node):
    """The hub: where it listens (a path on the WebSocket port), who may publish and read."""

    enabled: bool = True
    path: str = Field(default="/.well-known/mercure", pattern=r"^/\S*$")
    api_path: str = Field(default="/api/publish", pattern=r"^/\S*$")
    """The JSON publish API (``route`` + ``parameters`` or ``channel``, ``data``)."""
    heartbeat: float = Field(
        default=40.0, ge=0, description="seconds without an update before a ':' comment (0: off)"
    )
    cors_origins: list[str] = Field(default_factory=list)
    """Origins a browser may subscribe or publish from (``*``: any, then without credentials)."""
    anonymous: bool = True
    """Subscribers without a token get public updates (the reference hub's ``anonymous``)."""
    publisher_secret: SecretStr | None = None
    """HS256 key of publisher tokens; None: ``authentication.providers.jwt.secret``."""
    subscriber_secret: SecretStr | None = None
    """HS256 key of subscriber tokens; None: ``authentication.providers.jwt.secret``."""
    cookie: str = Field(default="mercureAuthorization", min_length=1)
    publish_origins: list[str] = Field(default_factory=list)
    """Origins a publish authenticated by the cookie may come from (``Origin``, else the
    ``Referer``'s; ``*``: any); a Bearer token needs none. Empty: cookie publishes refused."""
    max_body: int = Field(default=1_048_576, ge=1024, description="bytes of a publish body")
    api_keys: list[SecretStr] = Field(default_factory=list)
    """Keys of the JSON publish API (``X-API-Key`` or ``Authorization: apikey <key>``)."""
    forward: str | None = Field(default=None, min_length=1)
    """A pusher's name (``amqp``): HTTP publishes travel through it to every node and worker
    (ids are then ``urn:uuid:`` ones, the JSON API answers no position); None: this node
    (every worker of it, numbered by the parent: app/sse/workers.py)."""
    ids_kept: int = Field(
        default=100_000, ge=1, description="publisher ids remembered for Last-Event-ID"
    )

    @field_validator("publisher_secret", "subscriber_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < MIN_SECRET:
            raise ValueError(f"must be at least {MIN_SECRET} bytes (RFC 7518 section 3.2)")
        return value


class HttpPusherSettings(TransportSettings):
    """``pushers.http``: push through a server's JSON publish API (no broker in between)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    path: str = Field(default="/api/publish", pattern=r"^/\S*$")
    api_key: SecretStr | None = None
    """One of the server's ``mercure.api_keys``."""
    timeout: float = Field(default=5.0, gt=0, description="seconds a push may take")
