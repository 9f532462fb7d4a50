"""The socket pair between the parent of ``server.workers`` and each worker, one JSON object a
line: ``ParentLink`` is a worker's end, ``WorkerLinks`` the parent's ends of all of them.

The lines carry the dealer relay's calls (app/server/wamp2/relay.py), presence between the
workers (app/presence/peers.py) and HTTP publishes numbered by the parent (app/sse/workers.py).
One bad line (too long, not JSON, a reader's bug) is logged and costs only itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from gos_web_socket.app.position import LocalLog
    from gos_web_socket.app.presence.peers import PresenceHub
    from gos_web_socket.app.server.wamp2.relay import ParentRelay, RelayEnd
    from gos_web_socket.app.sse.workers import ParentPublishes
    from gos_web_socket.settings.models import Settings

logger = logging.getLogger(__name__)

__all__ = ["ParentLink", "WorkerLinks", "link_line_limit"]

LINK_LINE_FLOOR = 16 * 1024 * 1024
"""Bytes of one line the parent reads from a worker's link at least (a relayed call's
arguments); asyncio's default, 64 KiB, would stop the link at the first longer line."""
JSON_GROWTH = 6
"""How much longer a publish's data may grow as JSON (a control byte becomes ``\\u00XX``)."""


def link_line_limit(settings: Settings) -> int:
    """Bytes of one line on a worker's link: the largest HTTP publish as JSON, at least
    ``LINK_LINE_FLOOR``."""
    return max(LINK_LINE_FLOOR, JSON_GROWTH * settings.mercure.max_body + 65536)


class Linked(Protocol):
    """A worker's role, as far as its link goes: the fd of its end of the socket pair."""

    @property
    def link_fd(self) -> int: ...


class Slot(Protocol):
    """A worker's slot in the parent, as far as its link goes: the parent's end, if running."""

    @property
    def link(self) -> asyncio.StreamWriter | None: ...


Forward = Callable[[int, dict[str, Any]], None]
RelayFactory = Callable[[Forward], "ParentRelay"]
"""Builds the parent's dealer relay around ``WorkerLinks.forward`` (composed in containers.py)."""


class ParentLink:
    """A worker's end of its socket pair: report once ready, notice when the parent is gone,
    and carry the dealer relay's messages both ways, one JSON object a line
    (app/server/wamp2/relay.py)."""

    @classmethod
    def of(cls, worker: Linked | None) -> ParentLink | None:
        """A worker's end of its socket pair with the parent; None: not a worker."""
        return None if worker is None else cls(worker.link_fd)

    def __init__(self, fd: int) -> None:
        self._sock = socket.socket(fileno=fd)
        self._unsent = bytearray()
        """Lines not written yet: while there are, a write is scheduled or waits for room."""
        self._waiting = False
        """The loop watches the socket for room (what it took was not all)."""
        self._unread = b""
        self._relay: RelayEnd | None = None
        """Where the parent's lines go (``attach``)."""

    def attach(self, relay: RelayEnd) -> None:
        """Hand the parent's relay lines to ``relay`` (the worker's ``WorkerRelay``, or a
        splitter in front of it: presence, app/presence/peers.py)."""
        self._relay = relay

    @property
    def attached(self) -> RelayEnd | None:
        """Who gets the parent's lines now: a splitter attached later passes it the rest."""
        return self._relay

    def report(self, ops_port: int | None) -> None:
        """Tell the parent this worker serves (and where its /metrics is): a line after the
        others of this turn."""
        self.send({"pid": os.getpid(), "ops_port": ops_port})

    def send(self, message: dict[str, Any]) -> None:
        """One line to the parent, written with the others of this loop turn in one write: a
        mass reconnect's presence changes are thousands of lines a turn, and a system call
        each (and a wake-up of the parent each) took a share of the worker's loop."""
        line = json.dumps(message).encode() + b"\n"
        if not self._unsent:  # else a write is scheduled already, or waits for room
            asyncio.get_running_loop().call_soon(self._flush)
        self._unsent += line

    def _flush(self) -> None:
        """Write what waits; what the socket does not take is written when it has room."""
        try:
            sent = self._sock.send(self._unsent)
        except BlockingIOError:
            sent = 0
        except OSError:
            sent = len(self._unsent)  # the parent is gone: on_parent_gone stops the worker
        del self._unsent[:sent]
        loop = asyncio.get_running_loop()
        if self._unsent and not self._waiting:
            self._waiting = True
            loop.add_writer(self._sock.fileno(), self._flush)
        elif not self._unsent and self._waiting:
            self._waiting = False
            loop.remove_writer(self._sock.fileno())

    def on_parent_gone(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once when the parent's end closes (it exited or was killed);
        the lines read meanwhile go to the attached relay."""
        loop = asyncio.get_running_loop()
        sock = self._sock
        sock.setblocking(False)

        def readable() -> None:
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                loop.remove_reader(sock.fileno())
                callback()
                return
            *lines, self._unread = (self._unread + data).split(b"\n")
            for line in lines:
                if self._relay is None:
                    continue
                try:
                    self._relay.received(json.loads(line))
                except Exception as exc:  # the lines after it in this read still count
                    logger.warning("relay line from the parent refused: %r", exc)

        loop.add_reader(sock.fileno(), readable)

    def close(self) -> None:
        """Stop reading and writing; lines of this turn not written yet go now, if the
        socket takes them."""
        with contextlib.suppress(OSError):
            if self._unsent:
                self._sock.settimeout(1.0)  # whole lines, or nothing more once it is stuck
                self._sock.sendall(self._unsent)
        self._unsent.clear()
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            asyncio.get_running_loop().remove_writer(self._sock.fileno())
        self._sock.close()


class WorkerLinks:
    """The parent's ends of the workers' links: what each worker sends goes to the dealer
    relay, presence or the publishes; ``forward`` writes one line to a worker."""

    def __init__(self, slots: Sequence[Slot]) -> None:
        self._slots = slots
        self.relay: ParentRelay | None = None
        """Calls between the workers' dealers (app/server/wamp2/relay.py)."""
        self.presence: PresenceHub | None = None
        """Presence between the workers (app/presence/peers.py)."""
        self.publishes: ParentPublishes | None = None
        """HTTP publishes numbered for every worker (app/sse/workers.py)."""
        self._held: dict[int, list[bytes]] = {}
        """Lines to each worker in this loop turn, written together at its end."""

    def start(self, make_relay: RelayFactory, log: LocalLog | None) -> None:
        """Make the three readers; ``log`` numbers the publishes (the fan-out's, if any)."""
        from gos_web_socket.app.presence.peers import PresenceHub
        from gos_web_socket.app.sse.workers import ParentPublishes

        self.relay = make_relay(self.forward)
        self.presence = PresenceHub(self.forward)
        self.publishes = ParentPublishes(self.forward, len(self._slots), log)

    def forward(self, index: int, message: dict[str, Any]) -> None:
        """One relay line to worker ``index``, written with the others of this loop turn in
        one write (dropped when the worker is not running then)."""
        held = self._held
        if not held:
            asyncio.get_running_loop().call_soon(self._write_turn)
        held.setdefault(index, []).append(json.dumps(message).encode() + b"\n")

    def _write_turn(self) -> None:
        held, self._held = self._held, {}
        for index, lines in held.items():
            link = self._slots[index].link
            if link is None or link.is_closing():
                continue
            try:
                link.write(b"".join(lines))
            except (OSError, RuntimeError) as exc:  # a worker just gone: the others' lines go on
                logger.debug("worker %d: relay lines dropped: %r", index, exc)

    async def read(self, index: int, reader: asyncio.StreamReader) -> None:
        """Worker ``index``'s lines for one of its lives, each to the dealer relay, presence or
        the publishes by its ``op``; the end of the lines is the worker gone."""
        from gos_web_socket.app.presence.peers import is_presence
        from gos_web_socket.app.sse.workers import is_mercure

        relay, presence, publishes = self.relay, self.presence, self.publishes
        assert relay is not None and presence is not None and publishes is not None
        relay.joined(index)
        presence.joined(index)
        try:
            while True:
                try:
                    line = await reader.readline()
                    if not line:
                        return
                    message = json.loads(line)
                    if is_mercure(message):
                        publishes.received(index, message)
                    else:
                        (presence if is_presence(message) else relay).received(index, message)
                except ConnectionError:
                    return
                except Exception as exc:  # a bad line (too long, not JSON, a bug) costs itself only
                    logger.warning("worker %d: relay line refused: %r", index, exc)
        finally:
            relay.gone(index)
            presence.gone(index)
