"""Loopback ports for the servers and brokers a test starts, never the same one twice in a run.

A port is chosen before the process that will listen on it starts, so two ports asked for in
a row (a server's WebSocket and ZeroMQ ports) must not be the same; asking the kernel
(``bind(0)``) can hand the same free port back at once. Ports come from 20000-32767, below
Linux's ephemeral range (32768-60999), so no client socket of another process, nor its
TIME-WAIT, holds them (Erlang binds its distribution port without SO_REUSEADDR). Each
pytest-xdist worker takes its own slice of that range, so parallel workers never pick the same.
"""

from __future__ import annotations

import itertools
import os
import random
import socket
from collections.abc import Iterator

LOW, HIGH = 20000, 32768


def _slice() -> range:
    """This process's share of the range: all of it, or one slice per xdist worker."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    size = (HIGH - LOW) // max(count, 1)
    start = LOW + (index % max(count, 1)) * size
    return range(start, start + size)


def _cycle() -> Iterator[int]:
    """The slice's ports in order from a random start: a port comes back only after all others."""
    ports = _slice()
    first = random.randrange(len(ports))
    return itertools.chain.from_iterable(itertools.repeat([*ports[first:], *ports[:first]]))


_ports = _cycle()


def free_port() -> int:
    """A loopback port nothing listens on now, not handed out before in this run's process."""
    for port in _ports:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("unreachable: the port cycle is endless")
