"""Server-Sent Events as one more wire format: an update framed once per group of SSE
subscribers that may read the same things, written through the same fan-out as WAMP EVENTs.

A Mercure publish carries its data as an ``Update``: a ``str`` (WAMP subscribers receive the
plain string; history keeps the object) that also holds the update's id, type, retry, topics
and privacy. Any other payload (a push from the AMQP pusher, a WAMP publish) reaches SSE
subscribers as its JSON text, with the channel's history position as id.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from gos_web_socket.app.position import Position
from gos_web_socket.app.server.session import WireFormat

if TYPE_CHECKING:
    from gos_web_socket.app.sse.selectors import Selectors

_LINE_BREAKS = re.compile(r"\r\n|\r|\n")
COMMENT = b":\n"
"""A comment line: flushes the headers at once, and is the heartbeat."""


class Update(str):
    """The data of a Mercure publish, with what the SSE frame needs beside it."""

    __slots__ = ("event_id", "event_type", "retry", "topics", "private")

    event_id: str
    event_type: str | None
    retry: int | None
    topics: tuple[str, ...]
    private: bool

    @classmethod
    def of(
        cls,
        data: str,
        event_id: str,
        topics: tuple[str, ...],
        private: bool = False,
        event_type: str | None = None,
        retry: int | None = None,
    ) -> Update:
        update = cls(data)
        update.event_id, update.topics, update.private = event_id, topics, private
        update.event_type, update.retry = event_type, retry
        return update

    def to_wire(self) -> dict[str, Any]:
        """The update as push data (``mercure.forward``: through a pusher to every node)."""
        fields: dict[str, Any] = {"data": str.__str__(self), "id": self.event_id}
        fields |= {"topics": list(self.topics), "private": self.private}
        fields |= {"type": self.event_type, "retry": self.retry}
        return {WIRE_KEY: fields}

    @classmethod
    def from_wire(cls, data: Any) -> Update | None:
        """The update ``to_wire`` made; None for any other push data."""
        fields = data.get(WIRE_KEY) if isinstance(data, dict) and len(data) == 1 else None
        if not isinstance(fields, dict) or not isinstance(fields.get("data"), str):
            return None
        retry = fields.get("retry")
        return cls.of(
            fields["data"],
            str(fields.get("id")),
            tuple(str(t) for t in fields.get("topics") or ()),
            fields.get("private") is True,
            fields.get("type") if isinstance(fields.get("type"), str) else None,
            retry if isinstance(retry, int) else None,
        )


WIRE_KEY = "@mercure"


HUB_ID_PREFIX = "urn:gos:"
"""What the ids the hub makes start with (an IRI, as the protocol's hub-made ids are);
publishers may not use it, so a publisher's ``order-17`` is never read as a position."""


def position_id(position: Position) -> str:
    """The event id of a history position (``Last-Event-ID`` parses it back)."""
    return f"{HUB_ID_PREFIX}{position.epoch}-{position.offset}"


def parse_position(event_id: str) -> Position | None:
    """The position an id made by ``position_id`` names; None for any other id."""
    if not event_id.startswith(HUB_ID_PREFIX):
        return None
    epoch, sep, offset = event_id.removeprefix(HUB_ID_PREFIX).rpartition("-")
    if not sep or not epoch or not offset.isdigit():
        return None
    return Position(epoch, int(offset))


def event_bytes(
    data: str, event_id: str, event_type: str | None = None, retry: int | None = None
) -> bytes:
    """One SSE event: ``event:``, ``retry:``, ``id:``, one ``data:`` line per line of ``data``
    (CR, LF and CRLF all split, as the protocol says), a blank line."""
    lines = [] if event_type is None else [f"event: {event_type}"]
    if retry:
        lines.append(f"retry: {retry}")
    lines.append(f"id: {event_id}")
    lines.extend(f"data: {line}" for line in _LINE_BREAKS.split(data))
    return ("\n".join(lines) + "\n\n").encode()


def payload_text(payload: Any) -> str:
    """What an SSE subscriber reads of a payload: a string as it is, anything else as JSON."""
    if isinstance(payload, str):
        return str.__str__(payload)
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str)


class SseFormat(WireFormat):
    """SSE subscribers whose tokens allow the same private topics share one format (and one
    frame per broadcast). A private update they may not read frames as nothing."""

    name = "sse"
    __slots__ = ("grant",)

    def __init__(self, grant: Selectors | None) -> None:
        self.grant = grant
        """The token's ``mercure.subscribe`` selectors (None: no token, public updates)."""

    def allows(self, topics: Collection[str]) -> bool:
        """Whether this group may read a private update to ``topics``."""
        return self.grant is not None and any(self.grant.matches(t) for t in topics)

    def event_frame(
        self,
        topic: str,
        subscription: int,
        publication: int,
        payload: Any,
        position: Position | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> bytes:
        """An SSE event; WAMP v2 EVENT ``details`` (a pattern's topic, the publisher) have no
        place in the protocol and are left out."""
        if isinstance(payload, Update):
            if payload.private and not self.allows(payload.topics):
                return b""
            return event_bytes(
                str.__str__(payload), payload.event_id, payload.event_type, payload.retry
            )
        event_id = position_id(position) if position is not None else f"#{publication}"
        return event_bytes(payload_text(payload), event_id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SseFormat) and other.grant == self.grant

    def __hash__(self) -> int:
        return hash((SseFormat, self.grant))
