"""A topic's subscriber in memory, for tests of ``Topic`` on its own: frames are recorded."""

from __future__ import annotations

from typing import Any

from gos_web_socket.app.server import WireFormat


class RecordingSubscriber:
    """What ``Topic`` needs of a connection: a session id, a wire format and ``write_frame``;
    every frame written is kept in ``frames``."""

    def __init__(self, session_id: str, wire_format: WireFormat) -> None:
        self.session_id = session_id
        self.wire_format = wire_format
        self.frames: list[bytes] = []

    def write_frame(self, frame: bytes) -> bool:
        self.frames.append(frame)
        return True

    def write_now(self, frame: bytes) -> bool:
        return self.write_frame(frame)

    def send_event(self, topic: str, payload: Any) -> bool:
        raise AssertionError("a topic writes frames, it never sends one event at a time")
