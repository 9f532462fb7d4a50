"""The checks every incoming v2 message passes; each failure is a ``ProtocolError`` (ABORT)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gos_web_socket.app.exceptions import PayloadRejected, ProtocolError
from gos_web_socket.app.position import Position
from gos_web_socket.app.server.session import MAX_ID
from gos_web_socket.app.server.wamp2.codes import RECOVER
from gos_web_socket.app.server.wamp2.serializers import Serializer


@dataclass(slots=True)
class Request:
    """One v2 request: what its answer needs, and whether it was answered (once only)."""

    kind: int
    id: int
    answer_errors: bool = True
    answered: bool = False


def decode(serializer: Serializer, payload: bytes, is_binary: bool) -> list[Any]:
    """One WebSocket message as a WAMP message: a list starting with its integer type."""
    if is_binary != serializer.binary:
        kind = "binary" if is_binary else "text"
        raise PayloadRejected("binary_on_text_protocol", f"a {kind} message on {serializer.name}")
    try:
        message = serializer.decode(payload)
    except ProtocolError:
        raise
    except Exception as exc:  # every codec has its own error classes
        raise ProtocolError(f"undecodable message: {exc}") from None
    if not isinstance(message, list) or not message or type(message[0]) is not int:
        raise ProtocolError("a WAMP message must be a list starting with an integer type")
    return message


def an_id(value: Any, what: str) -> int:
    if type(value) is not int or not 1 <= value <= MAX_ID:
        raise ProtocolError(f"{what} must be an id (an integer in [1, 2^53]), got {value!r}")
    return value


def a_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProtocolError(f"{what} must be a dict")
    return value


def a_str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ProtocolError(f"{what} must be a string")
    return value


def length(message: list[Any], low: int, high: int, name: str) -> None:
    if not low <= len(message) <= high:
        raise ProtocolError(f"{name} has {len(message)} elements")


def arguments(message: list[Any], start: int, name: str) -> tuple[list[Any], dict[str, Any]]:
    """The optional ``Arguments|list, ArgumentsKw|dict`` from index ``start``."""
    args = message[start] if len(message) > start else []
    kwargs = message[start + 1] if len(message) > start + 1 else {}
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise ProtocolError(f"{name} arguments must be a list and keyword arguments a dict")
    return args, kwargs


def session_ids(options: dict[str, Any], key: str) -> list[str] | None:
    """A PUBLISH option listing session ids, as our string session ids."""
    if key not in options:
        return None
    value = options[key]
    if not isinstance(value, list):
        raise ProtocolError(f"PUBLISH option {key} must be a list of session ids")
    return [str(an_id(item, f"PUBLISH option {key}")) for item in value]


def flag(options: dict[str, Any], key: str, default: bool) -> bool:
    value = options.get(key, default)
    if type(value) is not bool:
        raise ProtocolError(f"option {key} must be a boolean")
    return value


def recover_option(options: dict[str, Any]) -> tuple[bool, Position | None]:
    """SUBSCRIBE option ``_recover``: a position to recover from, or true (where do I stand)."""
    if RECOVER not in options:
        return False, None
    value = options[RECOVER]
    if value is True:
        return True, None
    return True, Position.parse(value, f"SUBSCRIBE option {RECOVER}")
