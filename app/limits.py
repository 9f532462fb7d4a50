"""Per-connection budgets as small pure pieces: a token bucket, bounded JSON, bounded maps.

Nothing here does I/O or knows about a connection; the connection calls these and maps the
errors they raise to a close code (``CLOSE_CODES`` in app/close_codes.py):

- over a rate or size budget (``LimitExceeded``) → 1008 policy violation;
- a client frame JSON refuses, too deep or not JSON at all (``PayloadRejected``) → 1007;
- a message over ``max_message_size`` (also when fragmented) → 1009 message too big;
- a binary frame on the text-only WAMP v1 protocol → 1003 unsupported data.
"""

from __future__ import annotations

import json
from typing import Any

from gos_web_socket.app.exceptions import LimitExceeded, PayloadRejected


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; one token per message.

    The caller passes the clock (``loop.time()``), so the bucket is pure and a test needs no
    sleeping. A fresh bucket is full: a client may send ``burst`` messages at once on arrival.
    """

    __slots__ = ("rate", "burst", "_tokens", "_stamp")

    def __init__(self, rate: float, burst: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"TokenBucket needs rate > 0 and burst >= 1, got {rate}, {burst}")
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._stamp: float | None = None

    def take(self, now: float, tokens: float = 1.0) -> bool:
        """Spend ``tokens`` if there are enough at time ``now`` (seconds); False when over."""
        if self._stamp is not None and now > self._stamp:
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        if self._stamp is None or now > self._stamp:
            self._stamp = now
        if self._tokens < tokens:
            return False
        self._tokens -= tokens
        return True

    def give_back(self, tokens: float = 1.0) -> None:
        """Return ``tokens`` spent on traffic that turned out not to be a flood (at most
        ``burst`` are saved up)."""
        self._tokens = min(self.burst, self._tokens + tokens)


def _depth(value: Any) -> int:
    """Nesting depth of decoded JSON (a scalar is 0, ``[]`` is 1), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, list):
            children: Any = item
        elif isinstance(item, dict):
            children = item.values()
        else:
            continue
        level += 1
        deepest = max(deepest, level)
        stack.extend((child, level) for child in children)
    return deepest


_decode = json.JSONDecoder().decode


def decode_json(payload: bytes | str, max_bytes: int, max_depth: int) -> Any:
    """``json.loads`` for client frames, refusing what is too large, too deep or not JSON.

    Text frames are UTF-8 (RFC 6455), so bytes are decoded as UTF-8 directly, which skips
    ``json.loads``'s encoding detection and makes an ordinary frame faster than ``json.loads``
    despite the depth check: nesting can only pass ``max_depth`` when the payload holds more
    than ``max_depth`` brackets, and only then is the decoded value walked (iteratively).
    Nesting deep enough to exhaust the parser's recursion is caught here, so a
    ``RecursionError`` never reaches the WebSocket library.

    Raises:
        PayloadRejected: ``reason`` is ``max_message_size``, ``json_max_depth``,
            ``invalid_utf8`` or ``invalid_json``; the connection closes with ``exc.code``
            (``CLOSE_CODES[reason]``).
    """
    if len(payload) > max_bytes:
        raise PayloadRejected(
            "max_message_size", f"message of {len(payload)} bytes; the limit is {max_bytes}"
        )
    try:
        text = payload.decode() if isinstance(payload, bytes) else payload
        value = _decode(text)
    except RecursionError:
        raise PayloadRejected(
            "json_max_depth", f"JSON nested deeper than the limit of {max_depth}"
        ) from None
    except UnicodeDecodeError as exc:
        raise PayloadRejected("invalid_utf8", f"a text frame that is not UTF-8: {exc}") from None
    except ValueError as exc:
        raise PayloadRejected("invalid_json", f"invalid JSON: {exc}") from None
    if len(text) > max_depth and text.count("[") + text.count("{") > max_depth:
        if _depth(value) > max_depth:
            raise PayloadRejected(
                "json_max_depth", f"JSON nested deeper than the limit of {max_depth}"
            )
    return value


class BoundedPrefixes(dict[str, str]):
    """A connection's WAMP v1 PREFIX map, capped in entries and in total bytes.

    Re-defining a CURIE replaces its entry (and its byte count), as the spec allows.
    """

    __slots__ = ("max_bytes", "max_entries", "size")  # one per connection: no __dict__

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        super().__init__()
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.size = 0
        """Bytes held: UTF-8 lengths of every CURIE and URI."""

    def define(self, curie: str, uri: str) -> None:
        """Add or replace one prefix.

        Raises:
            LimitExceeded: ``max_prefixes`` or ``max_prefix_bytes`` would be passed; the map
                is left unchanged.
        """
        old = self.get(curie)
        size = self.size + len(curie.encode()) + len(uri.encode())
        if old is not None:
            size -= len(curie.encode()) + len(old.encode())
        elif len(self) >= self.max_entries:
            raise LimitExceeded("max_prefixes", f"more than {self.max_entries} PREFIX entries")
        if size > self.max_bytes:
            raise LimitExceeded(
                "max_prefix_bytes", f"PREFIX entries over {self.max_bytes} bytes in total"
            )
        self[curie] = uri
        self.size = size


def check_count(reason: str, count: int, limit: int, what: str) -> None:
    """Raise ``LimitExceeded(reason)`` when one more ``what`` would pass ``limit``.

    For subscriptions, pending calls and queued jobs: call it before adding the next one.
    """
    if count >= limit:
        raise LimitExceeded(reason, f"more than {limit} {what}")
