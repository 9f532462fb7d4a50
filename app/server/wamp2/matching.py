"""How a pattern (``match: prefix | wildcard``) covers a URI: one matcher for the broker's
pattern subscriptions (patterns.py) and the dealer's pattern registrations (registrations.py).

Our channel URIs use ``/`` (``acme/channel/lobby``), WAMP's use ``.`` (``com.acme.lobby``):
a wildcard pattern splits on both. Its components are what lies between separators; an empty
one matches exactly one non-empty component, and the separators must be the same ones in the
same places (``acme/channel/`` matches ``acme/channel/lobby``, ``com.acme..resize`` matches
``com.acme.img.resize``; ``acme/channel/`` does not match ``acme.channel.lobby``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MATCHES = ("exact", "prefix", "wildcard")
"""SUBSCRIBE and REGISTER ``match``: the URI itself, every URI starting with it, or every URI
with the same components where the pattern's are not empty."""

_SEPARATORS = re.compile(r"([./])")


def split(uri: str) -> list[str]:
    """Components and separators, alternating: ``a/b.c`` → ``[a, /, b, ., c]``."""
    return _SEPARATORS.split(uri)


def matches(match: str, pattern: str, uri: str) -> bool:
    """Whether ``pattern`` under ``match`` covers ``uri``."""
    if match == "prefix":
        return uri.startswith(pattern)
    if match == "wildcard":
        return _wildcard(split(pattern), split(uri))
    return pattern == uri


def _wildcard(parts: list[str], tokens: list[str]) -> bool:
    if len(parts) != len(tokens):
        return False
    for index, (part, token) in enumerate(zip(parts, tokens, strict=True)):
        if index % 2:  # a separator: the same one
            if part != token:
                return False
        elif (part != token) if part else not token:
            return False
    return True


def best(patterns: Iterable[tuple[str, str]], uri: str) -> tuple[str, str] | None:
    """The one (match, pattern) a call of ``uri`` goes to: the longest matching prefix (in
    characters), else the wildcard whose literal components come first, left to right; None:
    none covers it (the spec's order; an exact registration is looked up before this)."""
    prefix: str | None = None
    wildcard: tuple[tuple[bool, ...], str] | None = None
    tokens = split(uri)
    for match, pattern in patterns:
        if match == "prefix":
            if uri.startswith(pattern) and (prefix is None or len(pattern) > len(prefix)):
                prefix = pattern
        elif prefix is None and match == "wildcard":
            parts = split(pattern)
            if _wildcard(parts, tokens):
                rank = tuple(bool(part) for part in parts[::2])
                if wildcard is None or rank > wildcard[0]:
                    wildcard = (rank, pattern)
    if prefix is not None:
        return "prefix", prefix
    return None if wildcard is None else ("wildcard", wildcard[1])
