"""Named registries: what GOS builds from tagged services (pushers, push handlers, topics, RPC)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Generic, Self, TypeVar

from gos_web_socket.app.exceptions import (
    NotRegistered,
    PusherNotFound,
    PushHandlerNotFound,
    RpcNotFound,
    TopicNotFound,
)

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """A read-mostly mapping of alias to service whose misses name the known aliases."""

    not_found: type[NotRegistered] = NotRegistered

    def __init__(self, items: Mapping[str, T] | None = None) -> None:
        self._items: dict[str, T] = {}
        for name, item in (items or {}).items():
            self.add(name, item)

    @classmethod
    def named(cls, items: Iterable[Any]) -> Self:
        """Items that name themselves (topics, RPC handlers: the route callback that reaches
        them), each under its ``name``."""
        return cls({item.name: item for item in items})

    def add(self, name: str, item: T) -> None:
        """Register ``item`` under ``name``; items that carry a ``name`` get it set."""
        if hasattr(item, "name") and not isinstance(item, type):
            named: Any = item  # T is unbounded: any item may carry a name
            try:
                named.name = name
            except AttributeError:  # read-only name: keep the item's own
                pass
        self._items[name] = item

    def get_item(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise self.not_found(name, self._items) from None

    def __getitem__(self, name: str) -> T:
        return self.get_item(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({sorted(self._items)})"


class PusherRegistry(Registry[T]):
    not_found = PusherNotFound


class ServerPushHandlerRegistry(Registry[T]):
    not_found = PushHandlerNotFound


class TopicRegistry(Registry[T]):
    not_found = TopicNotFound


class RpcRegistry(Registry[T]):
    not_found = RpcNotFound
