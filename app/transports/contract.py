"""The transport contract: what a stranger implements to add a transport.

- **Sender**: a pusher transport subclasses ``Pusher`` (app/transports/pusher.py), which is a
  ``Sender``: set ``name``, implement ``send(envelope, context)`` (hand one envelope to the
  transport, raise ``PushFailed`` if it did not take it) and, if it holds a connection,
  ``disconnect()`` and ``forget_connection()``. Routing, the envelope, counting and the sync
  facade (app/transports/sync.py) are the pusher's, once for every transport.
- **Receiver**: subclass ``Receiver`` (``open``, ``receive``, ``cancel``, ``close``, ``is_open``)
  whose ``receive()`` returns ``Delivery`` objects (body, message id, ``ack``, ``reject``); a log
  every node reads is a ``LogReceiver``. Wrap it in a ``ServerPushHandler``
  (app/transports/handler.py), which hands each push to the server (``PushableServer``).

This module imports nothing from the server, the history or the events. See docs/transports.md
for the guarantees and a worked example ("Write your own transport").
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    from gos_web_socket.app.message import Message
    from gos_web_socket.app.position import Position
    from gos_web_socket.app.push import Push

__all__ = ["Delivery", "LogReceiver", "PushableServer", "Receiver", "Sender"]


class PushableServer(Protocol):
    """What a push handler needs from the server: hand a routed push to its topic.

    ``on_push`` raises when the topic cannot take the push (no topic, not pushable, its
    ``on_push`` failed), so transports with acknowledgements can reject the message. The
    ``Push`` (app/push.py) says everything about it: channel, data, provider, position, mode.
    """

    async def on_push(self, push: Push) -> None: ...

    async def flushed(self) -> None:
        """Return once every frame queued so far was handed to its client's transport.

        A transport with acknowledgements awaits this before it acks: ``on_push`` only queues
        the frames, which leave at the end of the loop turn.
        """
        ...


class Sender(ABC):
    """The sending half of a transport: the methods a pusher transport provides.

    ``Pusher`` builds on it; a transport subclasses ``Pusher`` and implements these.
    """

    name: str = ""
    """The alias under which the pusher is registered (``amqp``, ``zmq``, ``wamp``, ...)."""

    @abstractmethod
    async def send(self, envelope: Message, context: dict[str, Any]) -> None:
        """The sender contract: hand one envelope to the transport, return once it took it.

        ``envelope.encode()`` is the GOS wire body ``{"topic": ..., "data": ...}`` (JSON bytes);
        ``envelope.topic`` is the channel the router generated. ``context`` is the caller's
        transport options, as given to ``push()``: refuse keys you do not know. Many sends
        may be under way at once (background pushes, concurrent ``push()`` calls).

        Raises:
            InvalidPushArgument: data or context this transport cannot send.
            PushFailed: the transport did not take it; chain the native error (``from exc``),
                and pass the transport's ``message_id`` when it has one.
        """

    async def disconnect(self) -> None:  # noqa: B027 - optional, most pushers override it
        """Release the connection; safe to call twice (used by ``close()`` and by ``send()``
        itself to drop a broken connection: it waits for nothing).

        A pusher is reusable: a push after it connects again (it is not an error).
        """

    def forget_connection(self) -> None:  # noqa: B027 - optional, for pushers with a connection
        """Drop connection objects bound to an event loop that is gone, without any I/O (that
        loop is closed): the pusher calls it when it moves to a new loop, and the next
        ``send()`` connects again on that one."""


class Delivery:
    """One body taken from a transport, settled exactly once by the handler.

    The base class is the at-most-once case: ``ack`` and ``reject`` do nothing. A transport
    with acknowledgements subclasses it and overrides both. Neither may raise for a transport
    that went away meanwhile (log it; the redelivery is dropped by message id).

    Attributes:
        body: the raw bytes, a GOS envelope ``{"topic": ..., "data": ...}`` if all is well.
        message_id: the sender's id when the transport carries one; repeats are dropped.
        position: the push's position in a log every node reads (app/position.py), if any.
    """

    __slots__ = ("body", "message_id", "position", "refill")

    def __init__(
        self, body: bytes, message_id: str | None = None, position: Position | None = None
    ) -> None:
        self.body = body
        self.message_id = message_id
        self.position = position
        """Where the push is in the transport's log (a stream); None: this process numbers it."""
        self.refill = False
        """True for a push handled before the node restarted, read back from the log to fill
        channel history: ``on_push`` runs, its broadcasts are recorded and sent only to clients
        that recovered on this node (they follow positions), no event fires, nothing is counted."""

    async def ack(self, multiple: bool = False) -> None:
        """The push reached its topic and the frames were written: forget it.

        ``multiple=True`` (only used when the receiver's ``acks_multiple`` is true) also acks
        every earlier unsettled delivery of the same receiver.
        """

    async def reject(self, error: Exception) -> None:
        """The push cannot be delivered (``str(error)`` is the reason): dead-letter or drop it,
        never redeliver it as is."""


class Receiver(ABC):
    """The receiving half of a transport: what a stranger writes to add a push handler.

    The handler calls ``open()``, then ``receive()`` in a loop from one task, and on shutdown
    ``cancel()`` then ``close()``. After a failure it calls ``close()`` and, later, ``open()``
    again: a receiver must be reusable.
    """

    acknowledges: ClassVar[bool] = False
    """True when ``ack()`` tells the transport a push is done (at-least-once). The handler then
    acks only after ``PushableServer.flushed()``; at-most-once transports skip that wait."""

    acks_multiple: ClassVar[bool] = False
    """True when ``ack(multiple=True)`` settles all earlier deliveries (AMQP): one ack a batch."""

    @abstractmethod
    async def open(self) -> None:
        """Connect or bind and start receiving.

        Raises:
            PushHandlerError: the transport is not reachable (the supervisor retries later).
            ListenError, ConfigurationError: retrying cannot help (an address that cannot be
                bound, bad settings): on the first attempt, the server's start-up stops.
        """

    @abstractmethod
    async def receive(self) -> Sequence[Delivery]:
        """Wait for at least one delivery; return every one that is ready, in order.

        Returns an empty sequence once ``cancel()`` or ``close()`` was called.

        Raises:
            PushHandlerError: the transport failed (connection lost, socket error); the
                supervisor closes and reopens the receiver.
        """

    async def cancel(self) -> None:  # noqa: B027 - optional: most receivers stop in close()
        """Stop taking new deliveries; ``receive()`` returns those already taken, then ``[]``."""

    @abstractmethod
    async def close(self) -> None:
        """Release the transport; deliveries not yet settled go back to it. Safe to call twice."""

    @property
    @abstractmethod
    def is_open(self) -> bool:
        """True while deliveries can arrive."""


class LogReceiver(Receiver):
    """A receiver of a log that every node reads from its own position (a RabbitMQ stream):
    its deliveries carry positions, and it can read the log again for recoveries."""

    opened_at: Position | None = None
    """After ``open()``: the position after which it delivers every push, in order (None
    while the log's epoch is unknown)."""

    @abstractmethod
    async def read_back(self, first: int, last: int) -> Sequence[Delivery]:
        """The pushes the log still holds at offsets ``first``..``last``, in order, each with
        its ``position``; they need no settling."""
