"""Raw-socket WebSocket pieces for tests that must control every byte (the PHP client's way)."""

from __future__ import annotations

import base64
import os
import struct
from typing import NamedTuple


class Frame(NamedTuple):
    opcode: int
    payload: bytes


def php_upgrade_request(host: str, port: int, origin: str | None = None, path: str = "/") -> bytes:
    """The upgrade request gos/websocket-client sends, byte for byte (gos-behaviour §1.4)."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET ws://{host}:{port}{path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Pragma: no-cache",
        "Cache-Control: no-cache",
        "Upgrade: WebSocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Protocol: wamp",
        "Sec-WebSocket-Version: 13",
        f"Origin: {origin if origin is not None else host}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def masked_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One client frame (FIN set, masked), with 7/16/64-bit length encoding."""
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    return header + mask + apply_mask(payload, mask)


def apply_mask(payload: bytes, mask: bytes) -> bytes:
    """XOR ``payload`` with the repeated 4-byte ``mask`` (one big-int XOR: fast for megabytes)."""
    if not payload:
        return b""
    size = len(payload)
    key = (mask * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(size, "big")


def close_frame(code: int, reason: str = "") -> bytes:
    return masked_frame(struct.pack("!H", code) + reason.encode(), opcode=0x8)


def parse_frames(data: bytes) -> tuple[list[Frame], bytes]:
    """Unmasked server frames from ``data``; returns the frames and the incomplete rest."""
    frames: list[Frame] = []
    while len(data) >= 2:
        opcode, size = data[0] & 0x0F, data[1] & 0x7F
        offset = 2
        if size == 126:
            if len(data) < 4:
                break
            (size,) = struct.unpack("!H", data[2:4])
            offset = 4
        elif size == 127:
            if len(data) < 10:
                break
            (size,) = struct.unpack("!Q", data[2:10])
            offset = 10
        if len(data) < offset + size:
            break
        frames.append(Frame(opcode, data[offset : offset + size]))
        data = data[offset + size :]
    return frames, data


def split_http(data: bytes) -> tuple[bytes, bytes]:
    """The HTTP head (up to the blank line) and whatever followed it."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    return head + sep, rest
