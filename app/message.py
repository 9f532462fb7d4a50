"""The GOS push envelope ``{"topic": channel, "data": data}`` and its JSON codec."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from gos_web_socket.app.exceptions import InvalidPushArgument, MessageDecodeError

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def dumps(value: Any) -> str:
    """Compact JSON without NaN, the one encoder every frame and body goes through."""
    return _encoder.encode(value)


@dataclass(frozen=True, slots=True)
class Message:
    """What a pusher sends and a push handler receives: a channel and its data."""

    topic: str
    data: Any

    @classmethod
    def create(cls, topic: str, data: Any) -> Message:
        """Normalise ``data`` as GOS does: a string becomes a one-item list.

        Mappings and lists pass through; anything else is refused, because PHP's
        AbstractPusher only took strings and arrays.
        """
        if isinstance(data, str):
            return cls(topic, [data])
        if isinstance(data, dict | list | tuple):
            return cls(topic, data)
        raise InvalidPushArgument(
            f"push data must be a string, a dict or a list, not {type(data).__name__}"
        )

    def encode(self) -> bytes:
        """The JSON body, UTF-8; PHP's json_decode reads it unchanged."""
        try:
            return dumps({"topic": self.topic, "data": self.data}).encode()
        except (TypeError, ValueError) as exc:
            raise InvalidPushArgument(f"push data cannot be encoded as JSON: {exc}") from exc

    @classmethod
    def decode(cls, body: bytes | str) -> Message:
        """Parse a body written by us or by PHP's json_encode (``\\/``, ``\\uXXXX``)."""
        try:
            value = json.loads(body)
        except (UnicodeDecodeError, ValueError) as exc:
            raise MessageDecodeError(f"body is not valid JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise MessageDecodeError(f"body must be a JSON object, got {type(value).__name__}")
        missing = [key for key in ("topic", "data") if key not in value]
        if missing:
            raise MessageDecodeError(f"body lacks the key(s) {', '.join(missing)}")
        topic = value["topic"]
        if not isinstance(topic, str) or not topic:
            raise MessageDecodeError("body key 'topic' must be a non-empty string")
        return cls(topic, value["data"])
