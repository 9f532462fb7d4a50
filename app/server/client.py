"""What user hooks see of a connection, apart from the WebSocket library that carries it.

``WampConnection`` (app/server/connection.py) is a ``Client`` on autobahn's protocol; this part
holds the public attributes and knows nothing of autobahn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from gos_web_socket.app.auth.credentials import Credentials
from gos_web_socket.app.auth.user import ANONYMOUS, User
from gos_web_socket.app.server.compression import DeflateFormat
from gos_web_socket.app.server.jobs import Job, JobQueue
from gos_web_socket.app.server.session import Ended, Session, WireFormat, new_session_id
from gos_web_socket.app.server.timers import PeriodicTimers
from gos_web_socket.settings.models import LimitsSettings

if TYPE_CHECKING:
    from gos_web_socket.app.router import WampRequest
    from gos_web_socket.app.server.topic import Topic


class ClientServices(Protocol):
    """What a client reads of its server (``ConnectionServices`` has it)."""

    @property
    def limits(self) -> LimitsSettings: ...

    @property
    def max_message_size(self) -> int: ...


class Client:
    """A client of the WAMP server (v1 or v2); user hooks receive it as ``connection``.

    Public attributes: ``session_id`` (a decimal string; a v2 client gets the same number as
    its integer session id), ``remote_address``, ``timers`` (cancelled on close), ``user_data``
    (free for user code), ``subscriptions``, ``session``: the ``Wamp1Session`` or
    ``Wamp2Session`` chosen during the handshake (an ``Ended`` one, which sends nothing, once
    its departure is done and ``client_disconnected`` dispatched), and ``user``: who the
    authenticator says it is (``app.auth.User``; anonymous has no id), from the handshake's
    ``credentials``.
    """

    session: Session[Any]
    _services: ClientServices
    _jobs: JobQueue

    # Defaults on the class, assigned on an instance only when they change: autobahn already
    # puts some 75 attributes in each connection's __dict__, and past 85 keys CPython doubles
    # the dict's table (1.6 KiB more for every idle connection).
    opened = established = lost = closed = False
    """The states ``Lifecycle`` (app/server/lifecycle.py) moves the connection through: its
    handshake done, its session established, its TCP connection gone, and unregistered."""
    departed = torn_down = False
    """Its departure is done (out of its topics, ``client_disconnected`` dispatched); its
    transport's teardown is done: with both, ``release`` (``Lifecycle.ended``)."""
    close_reason = ""
    """Why the server closed the client (a ``server.limits`` name, ``invalid_json``...)."""
    _deflate_window: int | None = None
    """permessage-deflate's server window bits once negotiated (app/server/compression.py)."""
    _timers: PeriodicTimers | None = None
    _user_data: dict[str, Any] | None = None

    def __init__(self) -> None:
        super().__init__()
        self.session_id = str(new_session_id())
        self.remote_address = ""
        self.subscriptions: dict[str, tuple[Topic, WampRequest]] = {}
        self.user: User = ANONYMOUS
        self.credentials = Credentials()

    @property
    def user_data(self) -> dict[str, Any]:
        """A dict free for user code (made on first use)."""
        if self._user_data is None:
            self._user_data = {}
        return self._user_data

    @user_data.setter
    def user_data(self, value: dict[str, Any]) -> None:
        self._user_data = value

    @property
    def timers(self) -> PeriodicTimers:
        """Periodic timers cancelled on close; made on first use (most connections have none)."""
        if self._timers is None:
            self._timers = PeriodicTimers(f"connection {self.session_id}")
        return self._timers

    def stop_timers(self) -> None:
        """Cancel every periodic timer of this connection (it is gone)."""
        if self._timers is not None:
            self._timers.cancel_all()

    @property
    def wire_format(self) -> WireFormat:
        """How topics frame this client's EVENTs: its session's, deflated when agreed."""
        if self._deflate_window is None:
            return self.session.wire_format
        return DeflateFormat(self.session.wire_format, self._deflate_window)

    @property
    def limits(self) -> LimitsSettings:
        """This connection's budgets (``server.limits``)."""
        return self._services.limits

    @property
    def max_message_size(self) -> int:
        """``server.max_message_size``, bytes."""
        return self._services.max_message_size

    def enqueue(self, job: Job) -> None:
        """Run ``job`` after the jobs queued before it (the session's requests, in order).

        Raises:
            LimitExceeded: ``max_queued_jobs`` jobs wait already (the session closes 1008).
        """
        self._jobs.put(job)

    def enqueue_call(self, job: Job) -> None:
        """``enqueue`` an RPC call, counted in ``pending_calls`` until it is answered.

        Raises:
            LimitExceeded: ``max_pending_calls`` or ``max_queued_jobs`` would be passed.
        """
        self._jobs.put_call(job)

    def release(self) -> None:
        """Its departure and teardown are done: let go of what points back at it (its job
        queue's ``failed``; its session, which becomes an ``Ended``), so that reference
        counting frees the connection now instead of the next full garbage collection
        (app/gc_pacer.py). A caller still holding the old session keeps it."""
        self._jobs.release()
        session = self.__dict__.get("session")
        if session is not None:
            self.session = Ended(session.wire_format)

    def drop_jobs(self) -> None:
        """Drop the jobs not started yet (the connection is closing)."""
        self._jobs.clear()

    def send_event(self, topic: str, payload: Any) -> bool:
        """EVENT to this client only; v1: whether or not it subscribed, v2: if it subscribed."""
        return self.session.event(topic, payload)

    def __repr__(self) -> str:
        return f"WampConnection({self.session_id}, {self.remote_address})"
