"""Mercure topic selectors: exact topics, ``*``, URI templates (0.x) and URL patterns (1.0).

Supported template and pattern syntax (simple forms, linear-time regexes): ``{name}`` and
``:name`` match one path segment (no ``/``, ``?``, ``#``), ``{+name}`` and a ``*`` inside a
URL pattern match anything. A selector is compiled once and shared (``Selectors`` is hashable:
SSE subscribers with equal grants share one wire format).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from gos_web_socket.app.exceptions import ProtocolError

ANY = "*"
MAX_SELECTORS = 100
"""Selectors one request may name (the reference hub's cap)."""
MAX_LENGTH = 4096
"""Bytes of one selector (the reference hub's cap)."""
MAX_VARIABLES = 16
"""Variables in one template or URL pattern (each adds a pass over the topic)."""
_TEMPLATE = re.compile(r"\{([+#]?)[A-Za-z0-9_.%,]+\}")
_PATTERN = re.compile(r":[A-Za-z_][A-Za-z0-9_]*|\*")
_SEGMENT = r"[^/?#]+"


@lru_cache(maxsize=4096)
def template_regex(template: str) -> re.Pattern[str]:
    """The regex of a URI template (``{id}`` one segment, ``{+path}`` anything)."""
    found = list(_TEMPLATE.finditer(template))
    return compiled(template, [(f.start(), f.end(), bool(f.group(1))) for f in found])


@lru_cache(maxsize=4096)
def pattern_regex(pattern: str) -> re.Pattern[str]:
    """The regex of a simple URL pattern (``:id`` one segment, ``*`` anything); the scheme's
    colon (``https://``) is literal."""
    scheme, sep, rest = pattern.partition("://")
    if not sep:
        scheme, rest = "", pattern
    found = list(_PATTERN.finditer(rest))
    spans = [(f.start(), f.end(), f.group() == "*") for f in found]
    return re.compile(re.escape(scheme + sep) + compiled(rest, spans).pattern)


def compiled(text: str, spans: list[tuple[int, int, bool]]) -> re.Pattern[str]:
    """The regex of ``text`` whose ``spans`` (start, end, matches anything) are variables.

    A one-segment variable stops before the first character of the literal after it: each
    variable then has one way to match and a topic is matched in linear time (a variable that
    could also take the literal between variables backtracks exponentially in their number).
    """
    parts, last = [], 0
    for index, (start, end, anything) in enumerate(spans):
        parts.append(re.escape(text[last:start]))
        following = text[end : spans[index + 1][0] if index + 1 < len(spans) else len(text)]
        if anything:
            parts.append(".*")
        elif following and following[0] not in "/?#":
            parts.append(f"[^/?#{re.escape(following[0])}]+")
        else:
            parts.append(_SEGMENT)
        last = end
    parts.append(re.escape(text[last:]))
    return re.compile("".join(parts))


def check_shape(
    selector: str, syntax: re.Pattern[str], is_any: Callable[[re.Match[str]], bool]
) -> None:
    """At most ``MAX_VARIABLES`` variables, one match-anything part and no two parts side by
    side: matching a topic then stays within a bound (a regex of several ``.*`` backtracks
    polynomially on a long topic).

    Raises:
        ProtocolError: the selector has either.
    """
    found = list(syntax.finditer(selector))
    if len(found) > MAX_VARIABLES:
        raise ProtocolError(f"a topic selector holds {MAX_VARIABLES} variables at most: {selector}")
    if sum(map(is_any, found)) > 1:
        raise ProtocolError(f"a topic selector may hold one '{{+name}}' or '*' at most: {selector}")
    if any(a.end() == b.start() for a, b in zip(found, found[1:], strict=False)):
        raise ProtocolError(f"two variables side by side in a topic selector: {selector}")


@dataclass(frozen=True, slots=True)
class Selectors:
    """Exact topics, templates and patterns; ``matches`` tells whether a topic is selected."""

    exact: frozenset[str] = frozenset()
    templates: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    everything: bool = field(default=False)

    @classmethod
    def parse(cls, selectors: Sequence[str], patterns: Sequence[str] = ()) -> Selectors:
        """0.x ``topic`` values (``*``, templates, exact) and 1.0 ``match_urlpattern`` values.

        Raises:
            ProtocolError: over ``MAX_SELECTORS`` selectors or ``MAX_LENGTH`` bytes.
        """
        if len(selectors) + len(patterns) > MAX_SELECTORS:
            raise ProtocolError(f"at most {MAX_SELECTORS} topic selectors")
        if any(len(s.encode()) > MAX_LENGTH for s in [*selectors, *patterns]):
            raise ProtocolError(f"a topic selector is at most {MAX_LENGTH} bytes")
        for selector in selectors:
            check_shape(selector, _TEMPLATE, lambda found: bool(found.group(1)))
        for pattern in patterns:
            check_shape(pattern, _PATTERN, lambda found: found.group() == "*")
        exact = frozenset(s for s in selectors if s != ANY and not _TEMPLATE.search(s))
        templates = tuple(s for s in selectors if s != ANY and _TEMPLATE.search(s))
        everything = ANY in selectors or ANY in patterns
        return cls(exact, templates, tuple(p for p in patterns if p != ANY), everything)

    @property
    def wide(self) -> bool:
        """True when the selectors cover topics beyond the exact ones."""
        return self.everything or bool(self.templates or self.patterns)

    def matches(self, topic: str) -> bool:
        if self.everything or topic in self.exact:
            return True
        if any(template_regex(t).fullmatch(topic) for t in self.templates):
            return True
        return any(pattern_regex(p).fullmatch(topic) for p in self.patterns)
