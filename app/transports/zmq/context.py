"""The toolkit's one ZeroMQ context per process, and its bounded flush at interpreter exit.

Every socket of the transport is opened and closed here, so the exit flush knows how long
their lingers are; ``app.transports.zmq`` exports ``shared_context`` for ``inproc`` peers.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Mapping

import zmq
import zmq.asyncio

from gos_web_socket.app.transports.sync import after_exit_flush

__all__ = ["close_socket", "open_socket", "shared_context"]

_context: zmq.asyncio.Context | None = None
_context_pid = 0
_terminator: _Terminator | None = None
_context_lock = threading.Lock()
_sockets: weakref.WeakSet[zmq.asyncio.Socket] = weakref.WeakSet()
_exit_wait = 0.0  # the longest linger (s) given to a closed socket; bounds the exit flush


def shared_context() -> zmq.asyncio.Context:
    """The toolkit's one ZeroMQ context in this process (a fresh one after ``fork``).

    It is the toolkit's own, not ``zmq.Context.instance()``, so terminating it at exit waits
    only for our sockets. Use it for ``inproc://`` peers of our pushers and handlers.
    """
    global _context, _context_pid, _terminator
    with _context_lock:
        if _context is None or _context.closed or _context_pid != os.getpid():
            _context = zmq.asyncio.Context()
            _context_pid = os.getpid()
            try:
                _terminator = _Terminator(_context)
            except RuntimeError:  # first used during interpreter exit: no thread can start
                _terminator = None
        return _context


class _Terminator:
    """A daemon thread, started with the context, that terminates it once asked to.

    ``ctx.term()`` blocks until closed sockets delivered (their linger), so the exit must not
    run it on the main thread for longer than that; and Python 3.12 forbids starting a thread
    during interpreter shutdown, so this one is started beforehand and only woken at exit.
    """

    def __init__(self, context: zmq.asyncio.Context) -> None:
        self._asked = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(context,), name="zmq-exit-flush", daemon=True
        )
        self._thread.start()

    def _run(self, context: zmq.asyncio.Context) -> None:
        self._asked.wait()
        context.term()

    def terminate(self, within: float) -> None:
        """Terminate the context, waiting at most ``within`` seconds."""
        self._asked.set()
        self._thread.join(within)


def open_socket(kind: int, options: Mapping[zmq.SocketOption, int]) -> zmq.asyncio.Socket:
    """A socket of the shared context with ``options`` set, known to the exit flush."""
    sock = shared_context().socket(kind)
    for option, value in options.items():
        sock.setsockopt(option, value)
    _sockets.add(sock)
    return sock


def close_socket(sock: zmq.asyncio.Socket) -> None:
    """Close without blocking; the socket's own LINGER (always bounded) applies."""
    global _exit_wait
    linger = sock.getsockopt(zmq.LINGER) if not sock.closed else 0
    assert isinstance(linger, int)
    _exit_wait = max(_exit_wait, linger / 1000)
    sock.close()


def _flush_at_exit() -> None:
    """Give closed sockets their linger to deliver, but never hold the exit up for longer.

    Runs after the pushers were flushed and closed (``after_exit_flush``). Skipped when one
    of our sockets is still open (a receiver): terminating would wait for it forever.
    """
    ctx, terminator = _context, _terminator
    if ctx is None or terminator is None or ctx.closed or _context_pid != os.getpid():
        return
    if any(not sock.closed for sock in list(_sockets)):
        return
    terminator.terminate(_exit_wait + 0.5)


after_exit_flush(_flush_at_exit)
