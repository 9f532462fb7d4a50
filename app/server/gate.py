"""The HTTP gate: what a connection's request head meets before the WebSocket handshake.

In order: a blocked TCP peer is closed before any HTTP (GOS's BlockedIpCheck); a head over
``server.limits.handshake_max_bytes`` gets 431; behind a trusted proxy the client's address
comes from the forwarded headers and a blocked one gets 403; a plain ``GET /health`` (no
Upgrade) is answered as the ops port does; anything else goes on to the handshake with its
``Origin`` normalised (the PHP client sends one without a scheme). Bytes in, a verdict out:
the gate does no I/O, so it is tested without a socket.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gos_web_socket.app.server.guard import Guard, normalise_origin
from gos_web_socket.app.web import Request, Response, encode_response, parse_request

logger = logging.getLogger(__name__)

HEAD_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"Content-Length: 0\r\nConnection: close\r\n\r\n"
)
FORBIDDEN = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

Health = Callable[[], tuple[bool, dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Admit:
    """The head goes on to the WebSocket handshake."""

    data: bytes
    """The read buffer with the head's ``Origin`` normalised."""
    origin: str | None
    """The ``Origin`` as the client sent it (None: none)."""
    address: str
    """The client's address (a trusted proxy's forwarded hop, or the peer's own)."""


@dataclass(frozen=True, slots=True)
class Take:
    """A plain HTTP request to one of the server's HTTP paths (the Mercure hub): its handler
    takes the connection over (a response, or a stream of Server-Sent Events)."""

    request: Request
    body: bytes
    address: str


class ReadOn:
    """The head is one of ``paths``; its body is not all read yet."""


READ_ON = ReadOn()


@dataclass(frozen=True, slots=True)
class Answer:
    """The gate answers the request itself; the connection ends after ``reply``."""

    reply: bytes
    reason: str
    """``handshake_max_bytes`` (431: stop reading, linger), ``blocked`` (403) or ``health``."""
    address: str


class HttpGate:
    """One server's gate; ``check`` is called with a connection's buffer until it decides."""

    __slots__ = ("_guard", "_health", "_max_head", "_paths", "_max_body")

    def __init__(
        self,
        guard: Guard,
        max_head: int,
        health: Health | None = None,
        paths: frozenset[str] = frozenset(),
        max_body: int = 0,
    ) -> None:
        self._guard = guard
        self._max_head = max_head
        self._health = health
        self._paths = paths
        """Paths a plain HTTP request is taken on (``Take``) instead of the handshake."""
        self._max_body = max_body

    def refuses_peer(self, address: str) -> bool:
        """True for a TCP peer to close before any HTTP, without a reply (a blocked address
        that is not a trusted proxy: behind one, the client is known only from the head)."""
        guard = self._guard
        return not guard.trusts(address) and guard.blocks(address)

    def check(
        self, data: bytes, address: str, conn_id: str = ""
    ) -> Admit | Answer | Take | ReadOn | None:
        """The verdict on the bytes read so far from a peer at ``address``; None: the head is
        not complete yet (and not too large), read on."""
        end = data.find(b"\r\n\r\n")
        limit = self._max_head
        if end > limit or (end < 0 and len(data) > limit):
            message = "connection %s refused with HTTP 431: a request head of %d+ bytes, limit %d"
            logger.warning(message, conn_id, len(data), limit, extra={"conn_id": conn_id})
            return Answer(HEAD_TOO_LARGE, "handshake_max_bytes", address)
        if end < 0:
            return None
        head = data[:end]
        guard = self._guard
        if guard.trusts(address):
            request = parse_request(head)
            proxy, address = (
                address,
                guard.client_address(address, request.headers if request else {}),
            )
            logger.debug("connection %s: client %s via proxy %s", conn_id, address, proxy)
            if guard.blocks(address):
                return Answer(FORBIDDEN, "blocked", address)
        health = self.health_reply(head)
        if health is not None:
            return Answer(health, "health", address)
        if self._paths:
            taken = self.take(head, data[end + 4 :], address)
            if taken is not None:
                return taken
        normalised, origin = normalise_origin(head)
        return Admit(normalised + data[end:], origin, address)

    def take(self, head: bytes, rest: bytes, address: str) -> Take | Answer | ReadOn | None:
        """A request to one of ``paths`` without Upgrade, once its body (``Content-Length``)
        is read: ``READ_ON`` until then, 413 over ``max_body``, 411 for ``Transfer-Encoding``;
        None: not one of ours."""
        request = parse_request(head)
        if request is None or request.path not in self._paths or "upgrade" in request.headers:
            return None
        if "transfer-encoding" in request.headers:  # a body is read by its Content-Length only
            reply = Response.text("a request body needs Content-Length, not chunks\n", 411)
            return Answer(encode_response(reply), "http", address)
        try:
            length = int(request.headers.get("content-length", "0"))
        except ValueError:
            reply = Response.text("bad Content-Length\n", 400)
            return Answer(encode_response(reply), "http", address)
        if length > self._max_body or length < 0:
            reply = Response.text(f"body over {self._max_body} bytes\n", 413)
            return Answer(encode_response(reply), "http", address)
        if len(rest) < length:
            return READ_ON
        return Take(request, rest[:length], address)

    def health_reply(self, head: bytes) -> bytes | None:
        """The answer to a load balancer's ``GET /health`` without Upgrade; None for any
        other head, or when the server has no readiness check."""
        if self._health is None or not head.startswith((b"GET /health", b"HEAD /health")):
            return None
        request = parse_request(head)
        if request is None or request.path != "/health" or "upgrade" in request.headers:
            return None
        ready, body = self._health()
        reply = Response.json(body, 200 if ready else 503)
        return encode_response(reply, head_only=request.method == "HEAD")
