"""Where a push is in its log: ``Position`` and this process's own log (``LOCAL``).

Dependency-free (the transport contract and the history both need it); app/history.py
explains what epochs and offsets mean.
"""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass
from typing import Any

from gos_web_socket.app.exceptions import ProtocolError

__all__ = ["LOCAL", "LocalLog", "Position"]


@dataclass(frozen=True, slots=True)
class Position:
    """Where a push is in its log: ``offset`` within ``epoch``."""

    epoch: str
    offset: int

    def as_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "offset": self.offset}

    @classmethod
    def parse(cls, value: Any, what: str) -> Position | None:
        """``{"epoch": str, "offset": int}`` from a client, None for null; else ProtocolError."""
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ProtocolError(f"{what} must be a dict with epoch and offset")
        epoch, offset = value.get("epoch"), value.get("offset")
        if not isinstance(epoch, str) or type(offset) is not int or offset < -1:
            raise ProtocolError(f"{what} needs epoch (a string) and offset (an integer >= -1)")
        return cls(epoch, offset)


class LocalLog:
    """The log of a process without a broker log: an epoch per start and a counter."""

    def __init__(self) -> None:
        self.epoch = secrets.token_hex(6)
        self._offsets = itertools.count()
        self.last = -1

    def next(self) -> Position:
        self.last = next(self._offsets)
        return Position(self.epoch, self.last)

    def current(self) -> Position:
        """The last position handed out (offset -1: none yet)."""
        return Position(self.epoch, self.last)


LOCAL = LocalLog()
"""This process's log: positions of pushes that come from no broker log."""


@dataclass(frozen=True, slots=True)
class Publication:
    """One recorded broadcast: its position and the payload the subscribers got."""

    position: Position
    payload: Any
    at: float
