"""A topic's subscribers: by session id, and the ones written to grouped by wire format, so that
a broadcast frames its EVENT once per group (topic.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

from gos_web_socket.app.server.session import WireFormat


class Subscriber(Protocol):
    """What a topic needs of a connection (``WampConnection`` is one)."""

    @property
    def session_id(self) -> str: ...

    @property
    def wire_format(self) -> WireFormat: ...

    @property
    def write_frame(self) -> Callable[[bytes], bool]:
        """Queue one frame for this loop turn's write; False once the client is cut off (a
        bound method or a callable attribute: the connection's is its output's ``write``)."""
        ...

    def write_now(self, frame: bytes, /) -> bool:
        """Write what is queued and ``frame`` now, in one write; False once the client is cut
        off (the end of the turn, where a topic hands over its frames)."""
        ...

    def send_event(self, topic: str, payload: Any) -> bool: ...


class Members:
    """Subscribers by session id; those written to (listed) also by wire format. A subscriber
    is unlisted while its recovery is prepared (``Topic.hold``) and stays a member."""

    __slots__ = ("_all", "formats")

    def __init__(self) -> None:
        self._all: dict[str, Subscriber] = {}
        self.formats: dict[WireFormat, dict[str, Subscriber]] = {}
        """The listed subscribers grouped by wire format: one frame per group."""

    def add(self, connection: Subscriber) -> None:
        self._all[connection.session_id] = connection
        self.list(connection)

    def drop(self, connection: Subscriber) -> bool:
        """Forget a member (listed or not); False when it was not this member."""
        session_id = connection.session_id
        if self._all.get(session_id) is not connection:
            return False
        del self._all[session_id]
        self.unlist(connection)
        return True

    def list(self, connection: Subscriber) -> None:
        """Write broadcasts to the member again."""
        self.formats.setdefault(connection.wire_format, {})[connection.session_id] = connection

    def unlist(self, connection: Subscriber) -> None:
        """Stop writing broadcasts to the member (it stays one)."""
        wire = connection.wire_format
        group = self.formats.get(wire)
        if group is None or group.pop(connection.session_id, None) is None:
            return
        if not group:
            del self.formats[wire]

    def listed(self) -> int:
        """How many members broadcasts are written to."""
        return sum(map(len, self.formats.values()))

    def has(self, connection: Subscriber) -> bool:
        return self._all.get(connection.session_id) is connection

    def __contains__(self, session_id: str) -> bool:
        return session_id in self._all

    def __len__(self) -> int:
        return len(self._all)

    def __iter__(self) -> Iterator[Subscriber]:
        return iter(list(self._all.values()))
