"""The WAMP v2 serializations: ``wamp.2.json`` and ``wamp.2.msgpack``, message list to frame."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import msgpack

from gos_web_socket.app.limits import decode_json
from gos_web_socket.app.message import dumps
from gos_web_socket.app.server.session import FrameBuilder, KeywordArguments, WireFormat
from gos_web_socket.app.server.wamp2.codes import EVENT, POSITION

if TYPE_CHECKING:
    from gos_web_socket.app.position import Position


class Serializer(WireFormat):
    """One WAMP v2 serialization (its ``name`` is the subprotocol): message list to frame, back."""

    binary: ClassVar[bool]

    def __init__(self, frame: FrameBuilder) -> None:
        self._frame = frame

    @abstractmethod
    def encode(self, message: list[Any]) -> bytes: ...

    @abstractmethod
    def decode(self, payload: bytes) -> Any: ...

    def frame(self, message: list[Any]) -> bytes:
        """The complete frame of ``message``, ready for ``write_frame``."""
        return self._frame(self.encode(message), self.binary)

    def event_frame(
        self,
        topic: str,
        subscription: int,
        publication: int,
        payload: Any,
        position: Position | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> bytes:
        """EVENT ``[36, subscription, publication, details, [payload]]`` as one frame; a
        ``KeywordArguments`` payload is the EVENT's ``ArgumentsKw``: ``[..., {}, [], kwargs]``.
        The EVENT details are ``details`` and, on a channel with history,
        ``{"_position": {"epoch", "offset"}}``."""
        extra = dict(details) if details else {}
        if position is not None:
            extra[POSITION] = position.as_dict()
        if isinstance(payload, KeywordArguments):
            return self.frame([EVENT, subscription, publication, extra, [], payload])
        return self.frame([EVENT, subscription, publication, extra, [payload]])


class JsonSerializer(Serializer):
    name = "wamp.2.json"
    binary = False

    def __init__(self, frame: FrameBuilder, max_bytes: int = 65536, max_depth: int = 64) -> None:
        super().__init__(frame)
        self.max_bytes = max_bytes
        self.max_depth = max_depth

    def encode(self, message: list[Any]) -> bytes:
        return dumps(message).encode()

    def decode(self, payload: bytes) -> Any:
        """Bounded in size and depth (``PayloadRejected``: 1007, or 1009 when too big)."""
        return decode_json(payload, self.max_bytes, self.max_depth)


class MsgpackSerializer(Serializer):
    name = "wamp.2.msgpack"
    binary = True

    def encode(self, message: list[Any]) -> bytes:
        return msgpack.packb(message, use_bin_type=True)  # type: ignore[no-any-return]

    def decode(self, payload: bytes) -> Any:
        return msgpack.unpackb(payload, raw=False)


def serializers(
    frame: FrameBuilder, max_bytes: int = 65536, max_depth: int = 64
) -> dict[str, Serializer]:
    """The v2 serializers of one server, by WebSocket subprotocol; JSON frames are decoded
    within ``max_bytes`` and ``max_depth`` (``server.max_message_size``, ``json_max_depth``)."""
    json_serializer = JsonSerializer(frame, max_bytes, max_depth)
    return {json_serializer.name: json_serializer, MsgpackSerializer.name: MsgpackSerializer(frame)}
