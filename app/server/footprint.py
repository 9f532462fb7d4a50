"""What keeps an idle connection small: autobahn's per-connection state, shared or slimmed.

An idle client is mostly autobahn's protocol object; each piece here was measured per idle
connection (docs/security.md, memory): the observable event names shared between connections,
two queues on a list rather than a deque, the protocol options held once by the class.
"""

from __future__ import annotations

from typing import Any

from autobahn.asyncio.websocket import WebSocketServerFactory, WebSocketServerProtocol

_EVENT_NAMES: dict[tuple[str, ...], list[str]] = {}
"""autobahn's observable event names, one list per distinct set (``shared_event_names``)."""


def shared_event_names(valid_events: list[str] | None) -> list[str]:
    """One list per distinct set of event names (autobahn only reads it), not one per client."""
    names = tuple(valid_events or ())
    return _EVENT_NAMES.setdefault(names, list(names))


class SmallQueue(list[Any]):
    """The part of ``deque`` that autobahn's receive and send queues use (append, popleft,
    clear, len), on a list: they rarely hold more than two items, so ``pop(0)`` is cheap."""

    __slots__ = ()

    def popleft(self) -> Any:
        return self.pop(0)


def with_options(base: type[WebSocketServerProtocol], factory: WebSocketServerFactory) -> type[Any]:
    """A subclass of ``base`` holding the factory's protocol options as class attributes.

    Autobahn copies every option (``CONFIG_ATTRS``, about 45) from the factory onto each new
    connection that does not already have it, which costs each idle connection some 1.5 KiB
    of instance dictionary; a class attribute counts as already there, so the options are
    stored once per server instead. Set options with ``setProtocolOptions`` (it rebuilds this
    class); a connection's own attribute still overrides its class's. The subclass's
    ``CONFIG_ATTRS`` is empty: nothing is left to copy, and autobahn's debug line of what it
    copied, a ``pformat`` built for each connection even with debug off (0.27 ms, most of a
    connection's set-up: a storm of 160 connects held the loop 45 ms), costs nothing.
    """
    options = {}
    for name in base.CONFIG_ATTRS:
        value = getattr(factory, name)
        # A function as a class attribute would be bound to the connection: keep it plain.
        options[name] = staticmethod(value) if callable(value) else value
    options["CONFIG_ATTRS"] = ()
    return type(base.__name__, (base,), {**options, "__module__": base.__module__})
