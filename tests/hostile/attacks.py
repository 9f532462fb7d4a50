"""Hostile clients on raw sockets: each kind is one coroutine that attacks once and reports.

Every attacker returns an ``Outcome``: how the server ended the connection (a close frame and
its code, an HTTP status, a bare EOF or reset, or nothing within the attacker's deadline) and
when. ``EXPECTED`` is the documented answer to each kind (docs/security.md); the harness
compares the two. Raw sockets, because a library client refuses to send most of this.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import os
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from tests.support.raw_ws import masked_frame, parse_frames, php_upgrade_request

CHUNK = 65536
PING, PONG, TEXT, BINARY, CONTINUATION = 0x9, 0xA, 0x1, 0x2, 0x0


@dataclass
class Outcome:
    """What one attacker saw. ``end`` is ``close``, ``http``, ``eof``, ``reset`` or ``open``."""

    kind: str
    end: str
    code: int | None = None
    seconds: float = 0.0
    sent: int = 0
    detail: str = ""

    @property
    def answer(self) -> str:
        """``close 1008``, ``http 431``, ``eof``...: what the server did, in one word or two."""
        return f"{self.end} {self.code}" if self.code is not None else self.end

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def upgrade_request(host: str, port: int, protocol: str, head_extra: bytes = b"") -> bytes:
    """A browser-like upgrade request offering ``protocol``; ``head_extra`` goes before the end."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        "GET / HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        f"Sec-WebSocket-Protocol: {protocol}",
        "Sec-WebSocket-Version: 13",
    ]
    return ("\r\n".join(lines) + "\r\n").encode() + head_extra + b"\r\n"


def fragment(payload: bytes, opcode: int, fin: bool) -> bytes:
    """One masked frame with FIN as given (``masked_frame`` always sets FIN)."""
    frame = bytearray(masked_frame(payload, opcode))
    if not fin:
        frame[0] &= 0x7F
    return bytes(frame)


class Wire:
    """One raw connection: writes what the attacker says, reads until the server ends it."""

    def __init__(self, kind: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.kind = kind
        self.reader, self.writer = reader, writer
        self.started = time.monotonic()
        self.sent = 0
        self.frames = 0
        self.ended: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._reading: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, kind: str, host: str, port: int) -> Wire:
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
        return cls(kind, reader, writer)

    def finish(self, end: str, code: int | None = None, detail: str = "") -> None:
        if not self.ended.done():
            seconds = round(time.monotonic() - self.started, 3)
            self.ended.set_result(Outcome(self.kind, end, code, seconds, self.sent, detail))

    async def send(self, data: bytes) -> None:
        """Write and wait for the socket buffer; a server that hung up ends the attack."""
        if self.ended.done():
            raise ConnectionResetError("the server ended the connection")
        self.writer.write(data)
        self.sent += len(data)
        await self.writer.drain()

    async def handshake(self, request: bytes) -> bool:
        """Send the upgrade request; True on 101 (then frames are read in the background)."""
        try:
            await self.send(request)
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            self.finish("eof" if isinstance(exc, asyncio.IncompleteReadError) else "reset")
            return False
        status = head.split(b" ", 2)[1]
        if status != b"101":
            self.finish("http", int(status), head.split(b"\r\n", 1)[0].decode(errors="replace"))
            return False
        self.read_frames()
        return True

    def read_frames(self, http: bool = False) -> None:
        """Read in the background until the server ends the connection; with ``http``, the
        handshake is unfinished and an answer is an HTTP status line."""
        self._reading = asyncio.get_running_loop().create_task(self._read(http))

    async def _read(self, http: bool) -> None:
        rest = b""
        try:
            while True:
                data = await self.reader.read(CHUNK)
                if not data:
                    self.finish("eof")
                    return
                if http:
                    line = (rest + data).split(b"\r\n", 1)[0]
                    status = line.split(b" ")[1] if line.startswith(b"HTTP/") else b""
                    code = int(status) if status.isdigit() else None
                    self.finish("http", code, line[:200].decode(errors="replace"))
                    return
                frames, rest = parse_frames(rest + data)
                for frame in frames:
                    self.frames += 1
                    if frame.opcode == 0x8:
                        code = struct.unpack("!H", frame.payload[:2])[0] if frame.payload else 1005
                        self.finish("close", code, frame.payload[2:].decode(errors="replace"))
                        return
        except ConnectionError:
            self.finish("reset")

    async def wait(self, seconds: float) -> Outcome:
        """The server's answer within ``seconds``; ``open`` if it never ended the connection."""
        try:
            await asyncio.wait_for(asyncio.shield(self.ended), seconds)
        except TimeoutError:
            self.finish("open")
        return self.ended.result()

    async def close(self) -> None:
        if self._reading is not None:
            self._reading.cancel()
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass


Attack = Callable[[Wire, str, int], Awaitable[None]]


async def _v1(wire: Wire, host: str, port: int) -> bool:
    return await wire.handshake(php_upgrade_request(host, port))


def _text(message: object) -> bytes:
    return masked_frame(json.dumps(message).encode())


async def _flood(wire: Wire, frames: list[bytes]) -> None:
    """Send the frames in batches of about 64 KiB, as fast as the socket takes them."""
    batch: list[bytes] = []
    size = 0
    for frame in frames:
        batch.append(frame)
        size += len(frame)
        if size >= CHUNK:
            await wire.send(b"".join(batch))
            batch, size = [], 0
    if batch:
        await wire.send(b"".join(batch))


async def ping_flood(wire: Wire, host: str, port: int) -> None:
    """5,000 pings back to back (the server must answer each with a pong)."""
    if await _v1(wire, host, port):
        await _flood(wire, [masked_frame(b"p" * 16, PING)] * 5000)


async def prefix_flood(wire: Wire, host: str, port: int) -> None:
    """500 PREFIX entries of 60 KB each: 30 MB a connection would keep."""
    if await _v1(wire, host, port):
        pad = "a" * 60_000
        for i in range(500):
            await wire.send(_text([1, f"p{i}", f"http://example.com/{pad}/{i}#"]))


async def subscription_flood(wire: Wire, host: str, port: int) -> None:
    """5,000 SUBSCRIBEs to distinct channels (each one a live topic)."""
    if await _v1(wire, host, port):
        tag = os.urandom(4).hex()
        await _flood(wire, [_text([5, f"acme/channel/f{tag}_{i}"]) for i in range(5000)])


async def call_flood(wire: Wire, host: str, port: int) -> None:
    """5,000 CALLs without waiting for a result."""
    if await _v1(wire, host, port):
        await _flood(wire, [_text([2, str(i), "acme/rpc/sum", i, 1]) for i in range(5000)])


async def deep_json(wire: Wire, host: str, port: int) -> None:
    """One text frame of JSON nested 32,000 deep (64 KB, under max_message_size)."""
    if await _v1(wire, host, port):
        await wire.send(masked_frame(b"[" * 32_000 + b"]" * 32_000))


async def endless_fragments(wire: Wire, host: str, port: int) -> None:
    """A text message that never ends: 16 KB continuation frames, up to 16 MB."""
    if await _v1(wire, host, port):
        await wire.send(fragment(b"[" + b" " * 16_383, TEXT, fin=False))
        piece = fragment(b" " * 16_384, CONTINUATION, fin=False)
        for _ in range(1024):
            await wire.send(piece)


def tiny_fragment(byte: bytes, opcode: int, fin: bool) -> bytes:
    """A one-byte masked frame, cheap to build by the 10,000 (a zero mask is a valid mask)."""
    return bytes((opcode | (0x80 if fin else 0), 0x81)) + b"\0\0\0\0" + byte


@functools.cache
def _fragmented_message() -> list[bytes]:
    """The fragment flood's 60,000 frames, built once per process (the attackers share it)."""
    message = b"[1, " + b" " * 59_990 + b'"p", "x"]'
    last = len(message) - 1
    return [
        tiny_fragment(message[i : i + 1], TEXT if i == 0 else CONTINUATION, fin=i == last)
        for i in range(len(message))
    ]


async def fragment_flood(wire: Wire, host: str, port: int) -> None:
    """One 60 KB text message in 60,000 one-byte fragments (the issue's fragment flood)."""
    if await _v1(wire, host, port):
        await _flood(wire, _fragmented_message())


async def endless_tiny_fragments(wire: Wire, host: str, port: int) -> None:
    """A text message that never ends, in one-byte continuation frames (up to 1,000,000)."""
    if await _v1(wire, host, port):
        await wire.send(tiny_fragment(b"[", TEXT, fin=False))
        batch = tiny_fragment(b" ", CONTINUATION, fin=False) * 10_000
        for _ in range(100):
            await wire.send(batch)


async def pong_flood(wire: Wire, host: str, port: int) -> None:
    """20,000 unsolicited pongs back to back: control frames that cost no answer."""
    if await _v1(wire, host, port):
        await _flood(wire, [masked_frame(b"p" * 16, PONG)] * 20_000)


async def oversized_frame(wire: Wire, host: str, port: int) -> None:
    """One 8 MB text frame (max_frame_size is 64 KiB), sent whole."""
    if await _v1(wire, host, port):
        frame = masked_frame(b" " * (8 << 20))
        for offset in range(0, len(frame), CHUNK):
            await wire.send(frame[offset : offset + CHUNK])


async def invalid_utf8(wire: Wire, host: str, port: int) -> None:
    """A text frame whose bytes are not UTF-8."""
    if await _v1(wire, host, port):
        await wire.send(masked_frame(b'[7, "acme/channel/x", "\xff\xfe\xfd"]'))


async def binary_on_v1(wire: Wire, host: str, port: int) -> None:
    """A binary frame on the text-only WAMP v1 protocol."""
    if await _v1(wire, host, port):
        await wire.send(masked_frame(b'[5, "acme/channel/x"]', BINARY))


async def garbage_msgpack(wire: Wire, host: str, port: int) -> None:
    """Random bytes as the first binary frame on ``wamp.2.msgpack``."""
    if await wire.handshake(upgrade_request(host, port, "wamp.2.msgpack")):
        await wire.send(masked_frame(b"\xc1" + os.urandom(255), BINARY))


async def before_hello(wire: Wire, host: str, port: int) -> None:
    """A WAMP v2 SUBSCRIBE before any HELLO."""
    if await wire.handshake(upgrade_request(host, port, "wamp.2.json")):
        await wire.send(_text([32, 1, {}, "acme/channel/x"]))


HEAD_MB = 8
"""Size of ``huge_head``'s request: 500 x handshake_max_bytes. (The issue sent 24 MB; today's
server parses a head in time quadratic in its size, and 2 x 24 MB froze it for a minute.)"""


async def huge_head(wire: Wire, host: str, port: int) -> None:
    """A ``HEAD_MB`` upgrade request head (complete: the server must parse or refuse it)."""
    line = b"X-Pad: " + b"a" * 1016 + b"\r\n"
    start = php_upgrade_request(host, port).removesuffix(b"\r\n")
    wire.read_frames(http=True)  # an early HTTP answer or EOF ends the attack
    try:
        await wire.send(start)
        for _ in range(HEAD_MB * 1024 // 64):
            await wire.send(line * 64)
        await wire.send(b"\r\n")
    except ConnectionError:
        return


async def slow_handshake(wire: Wire, host: str, port: int) -> None:
    """An upgrade request that never ends (the last CRLF is never sent)."""
    wire.read_frames(http=True)
    await wire.send(php_upgrade_request(host, port).removesuffix(b"\r\n"))


async def silent(wire: Wire, host: str, port: int) -> None:
    """A TCP connection that never sends a byte (half-open from the server's side)."""
    wire.read_frames(http=True)


async def late_handshake(wire: Wire, host: str, port: int) -> None:
    """Finish the handshake around the 5 s opening-handshake timeout, then vanish at once.

    The finishing CRLF lands between 4.95 and 5.05 s, so some connections are timed out by
    the server in the same loop turn as their handshake completes (the ghost-session case; a
    race, so it is hit by some runs and some connections only).
    """
    await wire.send(php_upgrade_request(host, port).removesuffix(b"\r\n"))
    await asyncio.sleep(4.95 + 0.1 * (int.from_bytes(os.urandom(2)) / 65535))
    try:
        await wire.send(b"\r\n")
    except ConnectionError:
        pass
    wire.finish("gone")


ATTACKS: dict[str, Attack] = {
    attack.__name__: attack
    for attack in (
        ping_flood,
        prefix_flood,
        subscription_flood,
        call_flood,
        deep_json,
        endless_fragments,
        fragment_flood,
        endless_tiny_fragments,
        pong_flood,
        oversized_frame,
        invalid_utf8,
        binary_on_v1,
        garbage_msgpack,
        before_hello,
        huge_head,
        slow_handshake,
        silent,
        late_handshake,
    )
}

EXPECTED: dict[str, set[str]] = {
    "ping_flood": {"close 1008"},
    "prefix_flood": {"close 1008"},
    "subscription_flood": {"close 1008"},
    "call_flood": {"close 1008"},
    "deep_json": {"close 1007"},
    "endless_fragments": {"close 1009"},
    "fragment_flood": {"close 1008"},
    "endless_tiny_fragments": {"close 1008"},
    "pong_flood": {"close 1008"},
    "oversized_frame": {"close 1009"},
    "invalid_utf8": {"close 1007"},
    "binary_on_v1": {"close 1003"},
    "garbage_msgpack": {"close 1007"},
    "before_hello": {"close 1007"},
    "huge_head": {"http 431"},
    "slow_handshake": {"eof", "reset"},
    "silent": {"eof", "reset"},
    "late_handshake": {"gone"},
}
"""The documented answer to each kind (docs/security.md); ``late_handshake`` leaves by itself."""

DEADLINE = 9.0
"""Seconds an attacker may take in all (handshake_timeout is 5 s)."""

GRACE = 2.0
"""Seconds an attacker that has sent everything waits for the server's answer; the kinds in
``SERVER_ENDS`` send nothing that needs an answer and wait up to ``DEADLINE`` instead."""

SERVER_ENDS = {"slow_handshake", "silent"}


async def attack(kind: str, host: str, port: int) -> Outcome:
    """Run one attacker of ``kind`` until the server ends it; never raises for what it did."""
    try:
        wire = await Wire.open(kind, host, port)
    except OSError as exc:
        return Outcome(kind, "refused", detail=repr(exc))
    sending = asyncio.ensure_future(ATTACKS[kind](wire, host, port))
    try:
        # The server's answer may come while the attacker is still sending (or blocked on a
        # server that stopped reading): whichever happens first ends the attack.
        either: list[asyncio.Future[Any]] = [sending, wire.ended]
        await asyncio.wait(either, timeout=DEADLINE, return_when=asyncio.FIRST_COMPLETED)
        if not sending.done():
            sending.cancel()
        elif sending.exception() is not None and not isinstance(
            sending.exception(), ConnectionError
        ):
            wire.finish("error", detail=repr(sending.exception()))
        spent = time.monotonic() - wire.started
        patience = DEADLINE - spent if kind in SERVER_ENDS else min(GRACE, DEADLINE - spent)
        return await wire.wait(max(0.1, patience))
    finally:
        if not sending.done():
            sending.cancel()
        await wire.close()
