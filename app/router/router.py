"""Match channels to routes and generate channels from route names, as GOS's WampRouter does."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gos_web_socket.app.exceptions import (
    InvalidParameter,
    MissingMandatoryParameters,
    NoRouteMatch,
    RouteNotFound,
)
from gos_web_socket.app.router.collection import RouteCollection
from gos_web_socket.app.router.route import CompiledRoute, Route, TextToken

__all__ = ["Router", "WampRequest"]

logger = logging.getLogger(__name__)

# A lookaround group, with at most one level of groups nested inside it.
_LOOKAROUND = re.compile(r"\(\?<?[=!](?:[^()\\]|\\.|\((?:[^()\\]|\\.)*\))*\)", re.DOTALL)

_Entry = tuple[str, Route, str, re.Pattern[str]]
_Hit = tuple[str, Route, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class WampRequest:
    """The outcome of a match: which route, its attributes, and the channel that matched."""

    route_name: str
    route: Route
    attributes: Mapping[str, Any]
    matched: str


class Router:
    """Matches and generates channels for a fixed collection.

    Every route is compiled when the router is built, so definition errors surface at start-up;
    build the router after the collection is complete (later changes are not seen).
    """

    def __init__(self, collection: RouteCollection) -> None:
        self._collection = collection
        compiled = [(name, route, route.compile()) for name, route in collection.items()]
        entries: list[_Entry] = [(n, r, c.static_prefix, c.regex) for n, r, c in compiled]
        self._dynamic = [e for e, (_, _, c) in zip(entries, compiled, strict=True) if c.variables]
        # A static channel's outcome is known in advance, earlier dynamic routes included.
        self._static: dict[str, _Hit] = {}
        for _, route, c in compiled:
            if not c.variables and route.pattern not in self._static:
                hit = _first_match(route.pattern, entries)
                if hit is not None:
                    self._static[route.pattern] = hit
        self._generation = {name: (route, c, _checks(route, c)) for name, route, c in compiled}
        self._typed = {name: route for name, route, _ in compiled if route.payload is not None}

    @property
    def collection(self) -> RouteCollection:
        """The routes this router was built from."""
        return self._collection

    def match(self, channel: str) -> WampRequest:
        """The first route, in definition order, matching the whole channel; else NoRouteMatch."""
        hit = self._static.get(channel) or _first_match(channel, self._dynamic)
        if hit is None:
            logger.error("Unable to find route for %s", channel)
            raise NoRouteMatch(f'No routes found for "{channel}".')
        name, route, attributes = hit
        logger.debug("Matched route %s for channel %s", name, channel)
        return WampRequest(name, route, dict(attributes), channel)

    def generate(self, name: str, parameters: Mapping[str, Any] | None = None) -> str:
        """Build the channel of route ``name``; values are inserted as they are, unescaped.

        Raises:
            RouteNotFound: no route has that name.
            MissingMandatoryParameters: a variable has neither a value nor a default.
            InvalidParameter: a value does not match its variable's requirement.
        """
        try:
            route, compiled, checks = self._generation[name]
        except KeyError:
            raise RouteNotFound(
                f'Unable to generate a path for the named route "{name}" '
                "as such route does not exist."
            ) from None
        defaults = route.defaults
        merged = {**defaults, **(parameters or {})}
        missing = [
            variable
            for variable in compiled.variables
            if merged.get(variable) is None and variable not in defaults
        ]
        if missing:
            names = '", "'.join(missing)
            raise MissingMandatoryParameters(
                f'Some mandatory parameters are missing ("{names}") '
                f'to generate a path for route "{name}".'
            )
        parts: list[str] = []
        optional = True  # still walking trailing variables, right to left
        for token in reversed(compiled.tokens):
            if isinstance(token, TextToken):
                parts.append(token.text)
                optional = False
                continue
            value = merged[token.name]
            text = _php_str(value)
            omittable = optional and token.name in defaults
            if omittable and (value is None or text == _php_str(defaults[token.name])):
                continue
            if checks[token.name].fullmatch(text) is None:
                expected = route.requirements.get(token.name, token.requirement)
                raise InvalidParameter(
                    f'Parameter "{token.name}" for route "{name}" must match "{expected}" '
                    f'("{text}" given) to generate a corresponding path.'
                )
            parts.append(token.separator + text)
            optional = False
        return "".join(reversed(parts))

    def validate_payload(self, name: str, data: Any) -> Any:
        """``data`` for a push to route ``name``: as it is when the route names no payload
        model (one dict lookup), else checked against the model and dumped to JSON types.

        Raises:
            InvalidPayload: the data does not fit the route's model (each field named).
        """
        route = self._typed.get(name)
        return data if route is None else route.validate_payload(data, name)


def _first_match(channel: str, entries: Sequence[_Entry]) -> _Hit | None:
    """Linear scan in definition order; captures that took no part in the match are skipped."""
    for name, route, prefix, regex in entries:
        if channel.startswith(prefix) and (found := regex.match(channel)):
            attributes = dict(route.defaults)
            attributes.update((k, v) for k, v in found.groupdict().items() if v is not None)
            return name, route, attributes
    return None


def _checks(route: Route, compiled: CompiledRoute) -> dict[str, re.Pattern[str]]:
    """Per-variable patterns for generate(): case-insensitive, lookarounds removed."""
    flags = re.IGNORECASE if route.options.get("utf8") else re.IGNORECASE | re.ASCII
    return {
        token.name: re.compile(_LOOKAROUND.sub("", token.requirement), flags)
        for token in compiled.tokens
        if not isinstance(token, TextToken)
    }


def _php_str(value: Any) -> str:
    """Stringify as PHP's ``(string)`` cast: true is "1", false and null are "", 2.0 is "2"."""
    if value is None or value is False:
        return ""
    if value is True:
        return "1"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)
