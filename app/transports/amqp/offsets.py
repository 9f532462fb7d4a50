"""A stream reader's offset file: where a node is in the stream, kept across restarts."""

from __future__ import annotations

import fcntl
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from gos_web_socket.app.exceptions import ConfigurationError

__all__ = ["OffsetFile", "SavedOffset"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SavedOffset:
    """What a node wrote down: the last offset it handled, that message's identity, the epoch."""

    epoch: str
    offset: int
    identity: str


class OffsetFile:
    """A node's position in the stream, in ``<state_dir>/<stream>.<node_name>.json``.

    Written atomically (a temporary file, then ``os.replace``), at most every
    ``stream.save_interval`` seconds while pushes are handled, and at close. A second process
    with the same file is refused (an exclusive ``flock`` on a lock file beside it), since two
    nodes sharing one offset would skip each other's pushes. A lost file makes the node start
    at the stream's end, like a new node (docs/streams.md).
    """

    def __init__(self, directory: Path, stream: str, node_name: str) -> None:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{stream}.{node_name}")
        self.path = directory / f"{safe}.json"
        self._lock: int | None = None
        self._last: SavedOffset | None = None

    def lock(self) -> None:
        """Take the file for this process (ConfigurationError when another holds it)."""
        if self._lock is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ConfigurationError(
                [f"pushers.amqp.stream.state_dir: {self.path.parent}: {exc.strerror}"]
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise ConfigurationError(
                [
                    f"pushers.amqp.stream.node_name: {self.path} is in use by another running "
                    "node; give each node its own node_name or state_dir"
                ]
            ) from None
        self._lock = fd

    def unlock(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def load(self) -> SavedOffset | None:
        try:
            data = json.loads(self.path.read_text())
            saved = SavedOffset(str(data["epoch"]), int(data["offset"]), str(data["identity"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning(
                "stream offset file %s unreadable (%r): starting as a new node", self.path, exc
            )
            return None
        self._last = saved
        return saved

    def save(self, saved: SavedOffset) -> None:
        if saved == self._last:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_text(
                json.dumps(
                    {"epoch": saved.epoch, "offset": saved.offset, "identity": saved.identity}
                )
            )
            os.replace(tmp, self.path)
        except OSError as exc:
            logger.warning("stream offset file %s not written: %r", self.path, exc)
            return
        self._last = saved
