"""Structured log lines, and the rate limit under a flood of malformed frames from real sockets."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from gos_web_socket.app.logs import (
    KeyValueFormatter,
    RateLimitedLog,
    RateLimitFilter,
    make_handler,
)
from gos_web_socket.settings.models import LoggingSettings
from tests.ops.conftest import ops_stack

HANDSHAKE = (
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Protocol: wamp\r\n\r\n"
)
MASK = b"\x1f\x2e\x3d\x4c"


def text_frame(payload: bytes) -> bytes:
    """A masked client text frame of under 126 bytes."""
    masked = bytes(byte ^ MASK[i % 4] for i, byte in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + MASK + masked


async def send_malformed(port: int, payload: bytes) -> None:
    """Open a WebSocket with a raw socket, send one bad frame, leave at the server's close."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(HANDSHAKE)
        await reader.readuntil(b"\r\n\r\n")
        writer.write(text_frame(payload))
        seen = b""
        while b"\x88" not in seen:  # opcode of the server's close frame (1007)
            chunk = await reader.read(4096)
            if not chunk:
                break
            seen += chunk
    finally:
        writer.close()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def record(
    msg: str, *args: object, level: int = logging.WARNING, **extra: object
) -> logging.LogRecord:
    rec = logging.LogRecord("gos_web_socket.app.test", level, __file__, 1, msg, args, None)
    rec.__dict__.update(extra)
    return rec


@pytest.fixture
def captured() -> Iterator[tuple[io.StringIO, RateLimitFilter]]:
    """The configured handler on the root logger, writing to a buffer; the test owns its clock."""
    stream = io.StringIO()
    handler = make_handler(LoggingSettings(), stream)
    limiter = next(f for f in handler.filters if isinstance(f, RateLimitFilter))
    limiter.clock = FakeClock()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream, limiter
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.mark.slow  # 10,000 connections
async def test_ten_thousand_malformed_frames_make_a_bounded_log(
    captured: tuple[io.StringIO, RateLimitFilter],
) -> None:
    """10,000 bad frames from 10,000 connections log 10 lines, then one line counting the rest."""
    stream, limiter = captured
    async with ops_stack() as stack:
        port = stack.server.port
        gate = asyncio.Semaphore(200)

        async def one(n: int) -> None:
            async with gate:
                await send_malformed(port, b'{"not": "wamp", "n": %d}' % n)

        await asyncio.gather(*(one(n) for n in range(10_000)))
        assert stack.server.stats.frames_in == 10_000
        lines = stream.getvalue().splitlines()
        closed = [line for line in lines if "closed with 1007" in line]
        assert len(closed) == limiter.burst, lines
        assert len(lines) <= 3 * limiter.burst, "\n".join(lines)
        assert "rate_limited=60s" in closed[-1]
        assert all(line.startswith("ts=") and "conn_id=" in line for line in closed)

        assert isinstance(limiter.clock, FakeClock)
        limiter.clock.now += limiter.interval
        await send_malformed(port, b"[]")
        summary = [line for line in stream.getvalue().splitlines() if "suppressed=" in line]
        assert len(summary) == 1 and "suppressed=9990" in summary[0], summary


def test_rate_limit_is_per_template_not_per_argument() -> None:
    """Changing arguments do not get past the limit; another template has its own budget."""
    clock = FakeClock()
    limiter = RateLimitFilter(burst=3, interval=10, clock=clock)
    passed = [limiter.filter(record("bad frame from %s", n)) for n in range(5)]
    assert passed == [True, True, True, False, False]
    assert limiter.filter(record("another warning %s", 1))
    clock.now += 10
    first = record("bad frame from %s", 99)
    assert limiter.filter(first) and first.__dict__["suppressed"] == 2


def test_records_can_opt_out_of_the_rate_limit() -> None:
    """``extra={"rate_limit": False}`` (the profile report) always passes."""
    limiter = RateLimitFilter(burst=1, interval=60, clock=FakeClock())
    assert all(limiter.filter(record("profile", rate_limit=False)) for _ in range(5))


def test_key_value_lines_carry_context_and_stay_one_line() -> None:
    """Extras become keys; quotes and newlines from clients are escaped, never a second line."""
    line = KeyValueFormatter().format(
        record("closed: %s", 'evil"\ninjected=1', conn_id="abc123", route="acme_topic")
    )
    assert "\n" not in line
    assert line.split(" ", 1)[1].startswith("level=warning logger=gos_web_socket.app.test ")
    assert 'msg="closed: evil\\"\\ninjected=1"' in line
    assert line.endswith("conn_id=abc123 route=acme_topic")


def test_json_lines_parse_with_their_fields() -> None:
    """The json format writes one object per record with the same fields."""
    stream = io.StringIO()
    handler = make_handler(LoggingSettings(format="json"), stream)
    handler.handle(record("push handler %s failed", "amqp", handler="amqp"))
    entry = json.loads(stream.getvalue())
    assert entry["msg"] == "push handler amqp failed"
    assert (entry["level"], entry["handler"]) == ("warning", "amqp")


def test_rate_limited_log_says_how_many_it_held_back(caplog: pytest.LogCaptureFixture) -> None:
    """One warning per interval; the next one counts those held back (the shared limiter)."""
    clock = FakeClock()
    log = RateLimitedLog(logging.getLogger("tests.ratelimited"), interval=10)
    log.limit.clock = clock
    with caplog.at_level(logging.WARNING, "tests.ratelimited"):
        for n in range(4):
            log.warning("failed %d", n, handler="h")
        clock.now += 10
        log.warning("failed %d", 9)
    assert [r.getMessage() for r in caplog.records] == [
        "failed 0",
        "failed 9 (3 more since the last report)",
    ]
    assert caplog.records[0].handler == "h"
