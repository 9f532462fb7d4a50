"""Structured log lines (key=value or JSON) and a rate limit so bad input cannot flood the log.

Context goes in ``extra``: ``conn_id`` (a connection's session id), ``route``, ``handler``,
``pusher``, ``topic``; every extra field becomes a key of the line. One record is always one
line: values with spaces, quotes or newlines are JSON-quoted, so client text cannot forge lines.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from gos_web_socket.settings.models import LoggingSettings

_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_VARIABLE = re.compile(r"[0-9a-fA-F]{8,}|\d+")
"""Ids, addresses and counts in messages that libraries format before logging (autobahn)."""
LOGGER_BUDGET = 5
"""A logger may pass ``LOGGER_BUDGET * burst`` records per level and interval, whatever the text."""
_NO_LIMIT = "rate_limit"
"""``extra={"rate_limit": False}`` exempts a record (the profile report, for one)."""


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The line's fields: time, level, logger, message, then the record's extras."""
    created = time.gmtime(record.created)
    fields: dict[str, Any] = {
        "ts": f"{time.strftime('%Y-%m-%dT%H:%M:%S', created)}.{int(record.msecs):03d}Z",
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    for key, value in vars(record).items():
        if key not in _STANDARD and key != _NO_LIMIT and not key.startswith("_"):
            fields[key] = value
    if record.exc_info:
        fields["exc"] = logging.Formatter().formatException(record.exc_info)
    return fields


def _kv_value(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    if text and not any(c in text for c in ' ="\\') and text.isprintable():
        return text
    return json.dumps(text)


class KeyValueFormatter(logging.Formatter):
    """``ts=... level=warning logger=app.server.connection msg="..." conn_id=3f2a...``"""

    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{key}={_kv_value(value)}" for key, value in record_fields(record).items())


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(record_fields(record), default=str)


@dataclass
class _Window:
    ends: float
    passed: int = 0
    suppressed: int = 0


class RateLimit:
    """Windows of ``interval`` seconds per key, each letting ``burst`` events through.

    The one limiter of the toolkit: the log filter (``RateLimitFilter``) and the warnings of
    pushers, push handlers and the supervisor (``RateLimitedLog``) both count with it. A
    window opens at the first event of its key and holds back what exceeds ``burst`` until it
    ends; the next window's first event learns how many were held back.
    """

    def __init__(
        self,
        burst: int,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 1000,
    ) -> None:
        self.burst = burst
        self.interval = interval
        self.clock = clock
        self.max_keys = max_keys
        self._windows: dict[Any, _Window] = {}

    def window(self, key: Any, now: float) -> tuple[_Window, int]:
        """The current window of ``key`` and how many events the expired one held back."""
        window = self._windows.get(key)
        if window is not None and now < window.ends:
            return window, 0
        held = window.suppressed if window is not None else 0
        if window is None and len(self._windows) >= self.max_keys:
            self._forget_expired(now)
        window = self._windows[key] = _Window(now + self.interval)
        return window, held

    def admit(self, key: Any = None) -> tuple[bool, int]:
        """``(passes, held back before it)`` for one event of ``key``, counting it."""
        window, held = self.window(key, self.clock())
        if window.passed < self.burst:
            window.passed += 1
            return True, held
        window.suppressed += 1
        return False, held

    def _forget_expired(self, now: float) -> None:
        """Keep the table bounded when keys vary (f-strings in log calls)."""
        self._windows = {k: w for k, w in self._windows.items() if w.ends > now}
        while len(self._windows) >= self.max_keys:
            self._windows.pop(next(iter(self._windows)))


class RateLimitFilter(logging.Filter):
    """At most ``burst`` records per message template per ``interval`` seconds.

    The key is the logger, the level and the *template* (``record.msg``), not the arguments:
    in a flood the arguments are the attacker's (connection ids, parser errors), so keying on
    them would let every bad frame through. Messages formatted before logging (autobahn's
    "dropping connection to peer tcp4:1.2.3.4:5678") are keyed with their numbers and ids
    blanked, and each logger has a ceiling of ``LOGGER_BUDGET * burst`` per level for text
    that varies in other ways. The last record let through for a template gets
    ``rate_limited=<interval>s``; its first one in the next window gets ``suppressed=<count>``.
    """

    def __init__(
        self,
        burst: int = 10,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 1000,
    ) -> None:
        super().__init__()
        self.limit = RateLimit(burst, interval, clock, max_keys)
        self._lock = threading.Lock()  # pushers log from their own loop threads too

    @property
    def burst(self) -> int:
        return self.limit.burst

    @property
    def interval(self) -> float:
        return self.limit.interval

    @property
    def clock(self) -> Callable[[], float]:
        return self.limit.clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        self.limit.clock = clock

    def filter(self, record: logging.LogRecord) -> bool:
        if self.burst <= 0 or getattr(record, _NO_LIMIT, True) is False:
            return True
        msg = record.msg
        if not isinstance(msg, str):
            template = type(msg).__name__
        else:
            template = msg if record.args else _VARIABLE.sub("#", msg)
        limit = self.limit
        now = limit.clock()
        with self._lock:
            window, held = limit.window((record.name, record.levelno, template), now)
            budget, _ = limit.window((record.name, record.levelno, ""), now)
            if held:
                record.suppressed = held
            if window.passed < self.burst and budget.passed < LOGGER_BUDGET * self.burst:
                window.passed += 1
                budget.passed += 1
                if window.passed == self.burst:
                    record.rate_limited = f"{self.interval:g}s"
                return True
            window.suppressed += 1
            return False


class RateLimitedLog:
    """At most one warning per ``interval`` seconds, saying how many it held back.

    For failures that come in floods (bodies a push handler cannot deliver, background pushes
    that fail, a handler that keeps failing): one line per interval, with the count.
    """

    def __init__(self, log: logging.Logger, interval: float = 10.0) -> None:
        self.log = log
        self.limit = RateLimit(1, interval)

    @property
    def interval(self) -> float:
        return self.limit.interval

    def warning(self, message: str, *args: object, **extra: Any) -> None:
        passes, held = self.limit.admit()
        if not passes:
            return
        if held:
            message += f" ({held} more since the last report)"
        self.log.warning(message, *args, extra=extra or None, stacklevel=2)


def make_handler(settings: LoggingSettings, stream: TextIO | None = None) -> logging.Handler:
    """A stream handler with the configured format and rate limit."""
    handler = logging.StreamHandler(stream or sys.stderr)
    formatter = JsonFormatter() if settings.format == "json" else KeyValueFormatter()
    handler.setFormatter(formatter)
    limit = settings.rate_limit
    handler.addFilter(RateLimitFilter(limit.burst, limit.interval))
    return handler


def configure_logging(
    settings: LoggingSettings, verbose: bool = False, stream: TextIO | None = None
) -> logging.Handler:
    """Make the root logger write through ``make_handler`` only (the CLI calls this once)."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    handler = make_handler(settings, stream)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else settings.level.upper())
    return handler
