"""What the hub's requests say, read and checked before anything is published: Mercure's form
fields (``topic``, ``data``, ``private``, ``id``, ``type``, ``retry``) and the JSON API's body
and API key; and the protocol's answer to each refusal (``failure_response``).
"""

from __future__ import annotations

import hmac
import json
import logging
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from gos_web_socket.app.exceptions import (
    AuthenticationFailed,
    FirewallRejection,
    MalformedCredentials,
    ProtocolError,
    RoutingError,
)
from gos_web_socket.app.sse.selectors import MAX_LENGTH
from gos_web_socket.app.sse.wire import HUB_ID_PREFIX, Update
from gos_web_socket.app.web import Response

if TYPE_CHECKING:
    from pydantic import SecretStr

    from gos_web_socket.app.router import Router
    from gos_web_socket.app.web import Request

logger = logging.getLogger(__name__)

MAX_TOPICS = 1000
MAX_FIELDS = MAX_TOPICS + 8
"""Form fields of one publish: its topics and the other fields once each."""
MAX_RETRY_DIGITS = 10
RESERVED_TYPE = "mercure"

Fields = dict[str, list[str]]


def field_safe(value: str, what: str) -> str:
    """An ``id`` or ``type`` that cannot inject SSE fields (no control or format characters).

    Raises:
        ProtocolError: it holds one.
    """
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in value):
        raise ProtocolError(f'Invalid "{what}" parameter: control characters are not allowed')
    return value


def reserved(topic: str, hub_path: str) -> bool:
    """``*``, the hub's path, or a topic under it (by whole path segment)."""
    path = hub_path.rstrip("/")
    return topic in ("*", path) or topic.startswith((path + "/", path + "?", path + "#"))


def form_fields(body: bytes, hub_path: str) -> tuple[Fields, list[str]]:
    """The form's fields and its topics (checked: present, not too many, not too long, not
    reserved), before the token's grant is compared with them.

    Raises:
        ProtocolError: a malformed body or topic (400).
    """
    try:
        text = body.decode("utf-8")
        fields = parse_qs(text, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except UnicodeDecodeError:
        raise ProtocolError("the body must be UTF-8") from None
    except ValueError:
        raise ProtocolError(f"at most {MAX_FIELDS} form fields") from None
    topics = fields.get("topic", [])
    if not topics:
        raise ProtocolError('Missing "topic" parameter.')
    if len(topics) > MAX_TOPICS:
        raise ProtocolError(f"at most {MAX_TOPICS} topics")
    for topic in topics:
        if len(topic.encode()) > MAX_LENGTH:
            raise ProtocolError(f"a topic is at most {MAX_LENGTH} bytes")
        if reserved(topic, hub_path):
            raise ProtocolError(f"topic {topic!r} is reserved ('*' or the hub's own path)")
    return fields, topics


def form_update(fields: Fields, topics: Sequence[str]) -> Update:
    """The update the fields describe; its ``event_id`` is the publisher's ``id``, or empty.

    Raises:
        ProtocolError: a bad ``id``, ``type`` or ``retry`` (400).
    """
    given = fields.get("id", [None])[0]
    if given is not None:
        field_safe(given, "id")
        if given.startswith(("#", HUB_ID_PREFIX)) or given == "earliest" or not given:
            raise ProtocolError(
                f'Invalid "id" parameter: not empty, "earliest", "#..." or "{HUB_ID_PREFIX}..."'
            )
    event_type = fields.get("type", [None])[0]
    if event_type is not None and field_safe(event_type, "type") == RESERVED_TYPE:
        raise ProtocolError(f'Invalid "type" parameter: {RESERVED_TYPE!r} is reserved')
    retry = fields.get("retry", [None])[0]
    if retry is not None and not (
        retry.isascii() and retry.isdigit() and len(retry) <= MAX_RETRY_DIGITS
    ):
        raise ProtocolError(f'Invalid "retry" parameter: {MAX_RETRY_DIGITS} digits at most')
    return Update.of(
        fields.get("data", [""])[0],
        given or "",
        tuple(topics),
        "private" in fields,
        event_type,
        int(retry) if retry else None,
    )


def check_key(request: Request, keys: Sequence[SecretStr]) -> None:
    """The request's API key (``X-API-Key`` or ``Authorization: apikey <key>``).

    Raises:
        AuthenticationFailed: none, or not one of ``keys`` (``mercure.api_keys``).
    """
    key = request.headers.get("x-api-key")
    if key is None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        key = value.strip() if scheme.lower() == "apikey" else None
    known = [k.get_secret_value().encode() for k in keys]
    if key is None or not any(hmac.compare_digest(key.encode(), k) for k in known):
        raise AuthenticationFailed("bad_key", "a valid API key is required")


def json_body(body: bytes, router: Router) -> tuple[str, Any]:
    """The channel and data of ``{"route": name, "parameters": {...}, "data": ...}`` or
    ``{"channel": ..., "data": ...}``.

    Raises:
        ProtocolError: a body that is not such an object (400).
        RoutingError: no such route, or parameters it does not take (400).
    """
    try:
        message = json.loads(body)
    except ValueError:
        raise ProtocolError("the body must be JSON") from None
    if not isinstance(message, dict) or "data" not in message:
        raise ProtocolError('the body must be an object with "data" and "route" or "channel"')
    if isinstance(message.get("channel"), str):
        return message["channel"], message["data"]
    if isinstance(message.get("route"), str):
        parameters = message.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise ProtocolError('"parameters" must be an object')
        return router.generate(message["route"], parameters), message["data"]
    raise ProtocolError('the body needs "route" (a route name) or "channel"')


def failure_response(error: Exception) -> Response:
    """The protocol's status for an error: 400 malformed (``invalid_request`` for a malformed
    ``Authorization``), 401 bad token (a bare challenge when there was none), 403 refused (a
    grant, a route's rule or a topic's ``secure()``), 500 anything else (a topic hook's error)."""
    if isinstance(error, AuthenticationFailed):
        response = Response.text("invalid token\n", 401)  # no reason: it helps forgers
        missing = error.reason == "missing"
        response.headers["WWW-Authenticate"] = (
            "Bearer" if missing else 'Bearer error="invalid_token"'
        )
    elif isinstance(error, FirewallRejection):
        response = Response.text(f"{error}\n", 403)
        response.headers["WWW-Authenticate"] = 'Bearer error="insufficient_scope"'
    elif isinstance(error, MalformedCredentials):
        response = Response.text(f"{error}\n", 400)
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_request"'
    elif isinstance(error, ProtocolError | RoutingError):
        response = Response.text(f"{error}\n", 400)
    else:
        logger.warning("subscribe failed: %r", error)
        response = Response.text("the subscription could not be made\n", 500)
    return response
