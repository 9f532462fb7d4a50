"""An ordered, name-keyed set of routes; definition order decides which route matches first."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping

from gos_web_socket.app.router.route import Route

__all__ = ["RouteCollection"]


class RouteCollection(Mapping[str, Route]):
    """Routes by name in definition order.

    It is a read-only ``Mapping`` plus a few mutators: iterating yields route names, and
    ``items()`` yields ``(name, route)`` pairs; ``get(name)`` returns ``None`` for an unknown name.
    """

    def __init__(self) -> None:
        self._routes: dict[str, Route] = {}

    def __getitem__(self, name: str) -> Route:
        return self._routes[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._routes)

    def __len__(self) -> int:
        return len(self._routes)

    def __contains__(self, name: object) -> bool:
        return name in self._routes

    def add(self, name: str, route: Route) -> None:
        """Add or replace a route; a replaced name moves to the end, as in Symfony."""
        self._routes.pop(name, None)
        self._routes[name] = route

    def remove(self, *names: str) -> None:
        """Drop routes by name; unknown names are ignored."""
        for name in names:
            self._routes.pop(name, None)

    def add_collection(self, other: Mapping[str, Route]) -> None:
        """Append another collection's routes; names already here are overridden and moved."""
        for name, route in other.items():
            self.add(name, route)

    def copy(self) -> RouteCollection:
        """A deep copy: the routes are cloned too, so changing one leaves the other alone."""
        clone = RouteCollection()
        clone._routes = copy.deepcopy(self._routes)
        return clone
