"""Pub/sub routes and their compilation into anchored regular expressions."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gos_web_socket.app.exceptions import RouteDefinitionError
from gos_web_socket.app.router.payload import validate_payload

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = ["CompiledRoute", "Route", "RouteHistory", "TextToken", "Token", "VariableToken"]

SEPARATORS = "/,;.:-_~+*=@|"  # may be left out together with an optional variable after them
MAX_VARIABLE_LENGTH = 32  # PCRE's limit on subpattern names, kept for parity

_SEPARATOR_SET = frozenset(SEPARATORS)
_PHP_TRIM = " \t\n\r\0\x0b"
# Variable names are ASCII word characters, as in PubSubRouter (its regex has no `u` flag).
_VARIABLE = re.compile(r"\{\w+\}", re.ASCII)
_INLINE = re.compile(r"\{(\w++)(<.*?>)?(\?[^}]*+)?\}", re.ASCII)
_NEEDS_UTF8 = re.compile(r"(?<!\\)\\(?:\\\\)*+(?:X|[pP][{CLMNPSZ]|x\{[A-Fa-f0-9]{3})")
# Requirement pieces to rewrite: \p escapes, \x{..}, other escapes, classes, capturing "(".
_PIECES = re.compile(
    r"\\[pP](?:\{\w+\}|[A-Z])|\\x\{[0-9A-Fa-f]+\}|\\.|\[\^?\]?(?:\\.|[^]\\])*\]|\((?!\?)", re.DOTALL
)
# Python's `re` has no \p{..}; these are the Unicode properties we can spell without it.
_PROPERTIES = {"L": (r"[^\W\d_]", r"[\W\d_]"), "N": (r"\d", r"\D"), "Nd": (r"\d", r"\D")}


@dataclass(frozen=True, slots=True)
class TextToken:
    """Static text of a pattern."""

    text: str


@dataclass(frozen=True, slots=True)
class VariableToken:
    """A ``{name}`` placeholder with the separator in front of it and its Python regex."""

    separator: str
    requirement: str
    name: str


Token = TextToken | VariableToken


@dataclass(frozen=True, slots=True)
class RouteHistory:
    """``history: {size, ttl}`` of a route: pushes kept per channel, and for how many seconds."""

    size: int
    ttl: float

    @classmethod
    def parse(cls, value: object, where: str) -> RouteHistory:
        """From YAML; a RouteDefinitionError names the key, the value and what is allowed."""
        if not isinstance(value, Mapping) or set(value) - {"size", "ttl"}:
            raise RouteDefinitionError(
                f"{where} history: {value!r}: expected a mapping with size and ttl"
            )
        size, ttl = value.get("size", 100), value.get("ttl", 300)
        if type(size) is not int or size < 1:
            raise RouteDefinitionError(f"{where} history.size: {size!r}: expected an integer >= 1")
        if isinstance(ttl, bool) or not isinstance(ttl, int | float) or ttl <= 0:
            raise RouteDefinitionError(f"{where} history.ttl: {ttl!r}: expected seconds > 0")
        return cls(size, float(ttl))


@dataclass(frozen=True, slots=True)
class CompiledRoute:
    """What matching and generation need; ``tokens`` are in pattern order (left to right)."""

    static_prefix: str
    regex: re.Pattern[str]
    variables: tuple[str, ...]
    tokens: tuple[Token, ...]


class Route:
    """A channel pattern bound to a callback (the topic or RPC handler's name).

    Treat a route as read-only once compiled: ``compile()`` caches its result.
    """

    def __init__(
        self,
        pattern: str,
        callback: str,
        defaults: Mapping[str, Any] | None = None,
        requirements: Mapping[str, str] | None = None,
        options: Mapping[str, Any] | None = None,
        history: RouteHistory | None = None,
        payload: type[BaseModel] | None = None,
        presence: bool = False,
    ) -> None:
        self.history = history
        """The channel history its channels keep (app/history.py); None: none."""
        self.payload = payload
        """The pydantic model pushes to it must fit (app/router/payload.py); None: any JSON."""
        self.presence = presence
        """``presence: true``: who is subscribed to its channels is tracked (app/presence/)."""
        self.defaults: dict[str, Any] = {}
        self.requirements: dict[str, str] = {}
        self.pattern = _INLINE.sub(self._take_inline, pattern).strip(_PHP_TRIM)
        self.callback = callback
        self.defaults.update(defaults or {})
        for key, regex in (requirements or {}).items():
            self.requirements[key] = _sanitize(key, regex)
        self.options: dict[str, Any] = dict(options or {})
        self._compiled: CompiledRoute | None = None

    def _take_inline(self, found: re.Match[str]) -> str:
        """Move ``<requirement>`` and ``?default`` out of a placeholder, leaving ``{name}``."""
        name, requirement, default = found.groups()
        if default is not None:
            self.defaults[name] = default[1:] or None
        if requirement is not None:
            self.requirements[name] = _sanitize(name, requirement[1:-1])
        return "{" + name + "}"

    def compile(self) -> CompiledRoute:
        """Compile once and cache; raises RouteDefinitionError for an unusable pattern."""
        if self._compiled is None:
            self._compiled = _compile(self)
        return self._compiled

    def validate_payload(self, data: Any, route_name: str) -> Any:
        """``data`` as it travels on: as it is without a model, else checked and dumped.

        Raises:
            InvalidPayload: the data does not fit ``payload`` (each field named).
        """
        if self.payload is None:
            return data
        return validate_payload(self.payload, data, route_name)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Route):
            return NotImplemented
        return self._key() == other._key()

    def _key(self) -> tuple[Any, ...]:
        key = (self.pattern, self.callback, self.defaults, self.requirements, self.options)
        return (*key, self.history, self.payload, self.presence)


def _sanitize(key: str, regex: object) -> str:
    """Strip the anchors the compiler adds itself; refuse what cannot be a requirement."""
    if not isinstance(regex, str):
        raise RouteDefinitionError(f'Routing requirement for "{key}" must be a string.')
    regex = regex[1:] if regex.startswith("^") else regex.removeprefix("\\A")
    regex = regex[:-1] if regex.endswith("$") else regex.removesuffix("\\z")
    if not regex:
        raise RouteDefinitionError(f'Routing requirement for "{key}" cannot be empty.')
    return regex


def _compile(route: Route) -> CompiledRoute:
    """Tokenise the pattern and build its anchored regex, as Symfony's RouteCompiler does."""
    pattern = route.pattern
    utf8 = bool(route.options.get("utf8"))
    if not utf8 and not pattern.isascii():
        raise RouteDefinitionError(
            f'Cannot use UTF-8 route patterns without setting the "utf8" option '
            f'for pattern "{pattern}".'
        )
    tokens: list[Token] = []
    variables: list[str] = []
    position = 0
    for found in _VARIABLE.finditer(pattern):
        name = found.group()[1:-1]
        preceding = pattern[position : found.start()]
        position = found.end()
        _check_name(name, variables, pattern)
        separator = preceding[-1] if preceding and preceding[-1] in _SEPARATOR_SET else ""
        text = preceding[: len(preceding) - len(separator)]
        if text:
            tokens.append(TextToken(text))
        requirement = route.requirements.get(name)
        if requirement is None:
            requirement = _default_requirement(pattern[position:])
        else:
            if not utf8 and (not requirement.isascii() or _NEEDS_UTF8.search(requirement)):
                raise RouteDefinitionError(
                    f'Cannot use UTF-8 route requirements without setting the "utf8" option '
                    f'for variable "{name}" in pattern "{pattern}".'
                )
            requirement = _to_python(requirement)
        tokens.append(VariableToken(separator, requirement, name))
        variables.append(name)
    if position < len(pattern):
        tokens.append(TextToken(pattern[position:]))

    body = _regex_body(tokens, route.defaults)
    flags = re.DOTALL if utf8 else re.DOTALL | re.ASCII
    try:
        regex = re.compile(f"^{body}\\Z", flags)
    except re.error as exc:
        raise RouteDefinitionError(
            f'Route pattern "{pattern}" does not compile to a valid regular expression: {exc}.'
        ) from exc
    prefix = _static_prefix(tokens, route.defaults)
    return CompiledRoute(prefix, regex, tuple(variables), tuple(tokens))


def _check_name(name: str, seen: list[str], pattern: str) -> None:
    if name[0].isdigit():
        raise RouteDefinitionError(
            f'Variable name "{name}" cannot start with a digit in route pattern "{pattern}". '
            "Please use a different name."
        )
    if name in seen:
        raise RouteDefinitionError(
            f'Route pattern "{pattern}" cannot reference variable name "{name}" more than once.'
        )
    if len(name) > MAX_VARIABLE_LENGTH:
        raise RouteDefinitionError(
            f'Variable name "{name}" cannot be longer than {MAX_VARIABLE_LENGTH} characters '
            f'in route pattern "{pattern}". Please use a shorter name.'
        )


def _default_requirement(following: str) -> str:
    """Exclude "/" and the next separator, so a following optional variable can still match."""
    rest = _VARIABLE.sub("", following)
    next_separator = rest[0] if rest and rest[0] in _SEPARATOR_SET else ""
    excluded = "/" if next_separator in ("", "/") else "/" + re.escape(next_separator)
    requirement = f"[^{excluded}]+"
    if not following or (next_separator and not _VARIABLE.match(following)):
        # Backtracking cannot help when a forbidden character must come next: go possessive.
        requirement += "+"
    return requirement


def _to_python(regex: str) -> str:
    """Make groups non-capturing and spell the PCRE Unicode escapes Python's re lacks."""
    return _PIECES.sub(_python_piece, regex)


def _python_piece(piece: re.Match[str]) -> str:
    text = piece.group()
    if text == "(":
        return "(?:"
    if text.startswith("\\x{"):
        return f"\\U{int(text[3:-1], 16):08x}"
    if text[:2] in ("\\p", "\\P"):  # unknown properties stay, for re to refuse
        positive, negative = _PROPERTIES.get(text[2:].strip("{}"), (text, text))
        return negative if text[1] == "P" else positive
    return text  # other escapes and whole character classes are kept as they are


def _regex_body(tokens: list[Token], defaults: Mapping[str, Any]) -> str:
    """Join the token regexes; trailing variables with defaults nest as optional groups."""
    first_optional = len(tokens)
    for index in range(len(tokens) - 1, -1, -1):
        token = tokens[index]
        if not (isinstance(token, VariableToken) and token.name in defaults):
            break
        first_optional = index
    parts: list[str] = []
    for index, token in enumerate(tokens):
        if isinstance(token, TextToken):
            parts.append(re.escape(token.text))
            continue
        group = f"{re.escape(token.separator)}(?P<{token.name}>{token.requirement})"
        if index == 0 and first_optional == 0:
            parts.append(group + "?")  # a lone optional variable keeps its separator
        elif index >= first_optional:
            parts.append("(?:" + group)
            if index == len(tokens) - 1:
                parts.append(")?" * (len(tokens) - first_optional - (first_optional == 0)))
        else:
            parts.append(group)
    return "".join(parts)


def _static_prefix(tokens: list[Token], defaults: Mapping[str, Any]) -> str:
    """The text every matching channel starts with; a cheap filter before the regex."""
    if not tokens:
        return ""
    first = tokens[0]
    if isinstance(first, VariableToken):
        return "" if first.name in defaults or first.separator == "/" else first.separator
    prefix = first.text
    second = tokens[1] if len(tokens) > 1 else None
    if isinstance(second, VariableToken) and second.name not in defaults:
        prefix += "" if second.separator == "/" else second.separator
    return prefix
