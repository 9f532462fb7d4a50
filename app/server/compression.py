"""permessage-deflate (RFC 7692) for broadcasts: an EVENT is compressed once, not once per client.

autobahn compresses per connection, with a compressor per connection that keeps its context
between messages, so nothing can be shared (docs: performance reference, 1.3). Here the server
accepts a client's offer only with ``server_no_context_takeover``: every message we send is a
deflate stream of its own, so the same compressed bytes are valid for every client that
negotiated the same window size. ``DeflateFormat`` wraps a session's ``WireFormat``; the
topic's one broadcast path groups subscribers by format as it always did, so the compressed
frame is built once per broadcast and format and written to each of them.

Only EVENTs are compressed; other frames (WELCOME, call results) go out uncompressed, which the
extension allows message by message (RSV1 clear). What a client sends compressed is inflated by
autobahn; the server asks for ``client_no_context_takeover`` when the client allows it, so it
keeps no inflate window between a client's messages.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from autobahn.websocket.compress import (
    PerMessageDeflateOffer,
    PerMessageDeflateOfferAccept,
)

from gos_web_socket.app.server.session import WireFormat, event_frame

if TYPE_CHECKING:
    from gos_web_socket.app.position import Position

MIN_SIZE = 64
"""Payloads shorter than this go out uncompressed: deflate would save nothing."""

_TAIL = b"\x00\x00\xff\xff"
"""The empty stored block a sync flush ends with; RFC 7692 7.2.1 has the sender drop it."""


class NoContextAccept(PerMessageDeflateOfferAccept):
    """An accepted offer whose answer always says ``server_no_context_takeover``.

    RFC 7692 7.1.1.1 lets a server announce it unasked; autobahn announces it only when the
    client asked, although it then compresses without context takeover either way.
    """

    def get_extension_string(self) -> str:
        answer: str = super().get_extension_string()  # type: ignore[no-untyped-call]
        if "server_no_context_takeover" not in answer:
            name, _, rest = answer.partition(";")
            answer = f"{name}; server_no_context_takeover" + (f";{rest}" if rest else "")
        return answer


def accept_offer(offers: list[Any]) -> PerMessageDeflateOfferAccept | None:
    """autobahn's ``perMessageCompressionAccept``: the first permessage-deflate offer, accepted
    with ``server_no_context_takeover`` (and ``client_no_context_takeover`` when allowed)."""
    for offer in offers:
        if isinstance(offer, PerMessageDeflateOffer):
            return NoContextAccept(  # type: ignore[no-untyped-call]
                offer,
                request_no_context_takeover=bool(offer.accept_no_context_takeover),
                no_context_takeover=True,
            )
    return None


def negotiated_window(agreed: Any) -> int | None:
    """The window bits of the server-to-client direction, or None when deflate is off.

    ``agreed`` is what the handshake agreed on (the connection reads it from autobahn; None:
    nothing).
    """
    if agreed is None or getattr(agreed, "EXTENSION_NAME", "") != "permessage-deflate":
        return None
    bits = agreed.server_max_window_bits
    return int(bits) if bits else zlib.MAX_WBITS


def unframe(frame: bytes) -> tuple[int, bytes]:
    """The first byte (FIN, opcode) and the payload of one unmasked frame we built."""
    size = frame[1] & 0x7F
    start = 2 if size < 126 else 4 if size == 126 else 10
    return frame[0], frame[start:]


def deflate_frame(first: int, payload: bytes, window: int) -> bytes:
    """One compressed frame (RSV1 set) of ``payload``, a deflate stream of its own."""
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -window)
    body = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
    if body.endswith(_TAIL):
        body = body[:-4]
    size = len(body)
    head = first | 0x40
    if size < 126:
        return bytes((head, size)) + body
    if size < 65536:
        return struct.pack("!BBH", head, 126, size) + body
    return struct.pack("!BBQ", head, 127, size) + body


@dataclass(frozen=True, slots=True)
class DeflateFormat(WireFormat):
    """A session's wire format, its EVENTs compressed for clients with the same window."""

    inner: WireFormat
    window: int = zlib.MAX_WBITS

    name = "deflate"

    def event_frame(
        self,
        topic: str,
        subscription: int,
        publication: int,
        payload: Any,
        position: Position | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> bytes:
        inner = self.inner
        frame = event_frame(inner, topic, subscription, publication, payload, position, details)
        first, data = unframe(frame)
        if len(data) < MIN_SIZE:
            return frame
        return deflate_frame(first, data, self.window)

    def __repr__(self) -> str:
        return f"DeflateFormat({self.inner!r}, window={self.window})"
