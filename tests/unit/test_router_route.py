"""Route parsing and compilation (ports of PubSubRouter's RouteTest and RouteCompilerTest)."""

from __future__ import annotations

from typing import Any

import pytest

from gos_web_socket.app.exceptions import RouteDefinitionError
from gos_web_socket.app.router import Route
from gos_web_socket.app.router.route import TextToken, VariableToken


@pytest.mark.parametrize(
    ("pattern", "defaults", "requirements"),
    [
        ("foo/{bar<.*>}", {}, {"bar": ".*"}),
        ("foo/{bar<>>}", {}, {"bar": ">"}),
        ("foo/{bar<\\d+>}", {}, {"bar": "\\d+"}),
        ("foo/{bar?}", {"bar": None}, {}),
        ("foo/{bar?baz}", {"bar": "baz"}, {}),
        ("foo/{bar?<>}", {"bar": "<>"}, {}),
        ("foo/{bar<.*>?<>}", {"bar": "<>"}, {"bar": ".*"}),
        ("foo/{page<\\d+>?1}", {"page": "1"}, {"page": "\\d+"}),
        ("{foo?}/{bar<\\w+>?x}", {"foo": None, "bar": "x"}, {"bar": "\\w+"}),
    ],
)
def test_inline_requirements_and_defaults(
    pattern: str, defaults: dict[str, Any], requirements: dict[str, str]
) -> None:
    """`{name<regex>?default}` moves into requirements and defaults, leaving `{name}`."""
    route = Route(pattern, "cb")
    assert "<" not in route.pattern and "?" not in route.pattern
    assert route.defaults == defaults
    assert route.requirements == requirements


def test_explicit_values_override_inline_ones() -> None:
    """Constructor defaults and requirements win over the inline ones, as in Symfony."""
    route = Route("foo/{bar<\\d+>?1}", "cb", {"bar": "2"}, {"bar": "[a-z]+"})
    assert route.pattern == "foo/{bar}"
    assert route.defaults == {"bar": "2"}
    assert route.requirements == {"bar": "[a-z]+"}


def test_attributes_are_kept() -> None:
    """Pattern (trimmed), callback, defaults, requirements and options are plain attributes."""
    route = Route(
        "  chat/{room} ", "acme.topic", {"room": "lobby"}, {"room": "\\w+"}, {"utf8": True}
    )
    assert route.pattern == "chat/{room}"
    assert route.callback == "acme.topic"
    assert route.defaults == {"room": "lobby"}
    assert route.requirements == {"room": "\\w+"}
    assert route.options == {"utf8": True}


@pytest.mark.parametrize(
    ("given", "kept"),
    [("^\\d+$", "\\d+"), ("^a", "a"), ("a$", "a"), ("\\A\\d+\\z", "\\d+"), ("^^a", "^a")],
)
def test_requirement_anchors_are_stripped(given: str, kept: str) -> None:
    """One leading ^ (or \\A) and one trailing $ (or \\z) are removed; the compiler anchors."""
    assert Route("{x}", "cb", requirements={"x": given}).requirements == {"x": kept}


@pytest.mark.parametrize("empty", ["", "^", "$", "^$", "\\A\\z"])
def test_empty_requirement_is_refused(empty: str) -> None:
    """A requirement that is empty once sanitised raises with Symfony's message."""
    with pytest.raises(
        RouteDefinitionError, match='^Routing requirement for "x" cannot be empty.$'
    ):
        Route("{x}", "cb", requirements={"x": empty})


def test_empty_inline_requirement_is_refused() -> None:
    """`{x<>}` is an empty requirement too."""
    with pytest.raises(RouteDefinitionError, match="cannot be empty"):
        Route("a/{x<>}", "cb")


def test_non_string_requirement_is_refused() -> None:
    """Requirements are regex strings; anything else is a definition error."""
    with pytest.raises(RouteDefinitionError, match='requirement for "x" must be a string'):
        Route("{x}", "cb", requirements={"x": 5})  # type: ignore[dict-item]


def test_compile_is_cached() -> None:
    """compile() returns the same CompiledRoute on every call."""
    route = Route("a/{b}", "cb")
    assert route.compile() is route.compile()


def test_equality_and_copy() -> None:
    """Routes compare by value; equal routes need not be the same object."""
    assert Route("a/{b}", "cb", {"b": 1}) == Route("a/{b}", "cb", {"b": 1})
    assert Route("a/{b}", "cb") != Route("a/{b}", "other")


def _var(separator: str, requirement: str, name: str) -> VariableToken:
    return VariableToken(separator, requirement, name)


@pytest.mark.parametrize(
    ("pattern", "defaults", "requirements", "prefix", "regex", "variables", "tokens"),
    [
        ("foo", {}, {}, "foo", r"^foo\Z", (), (TextToken("foo"),)),
        (
            "foo/{bar}",
            {},
            {},
            "foo",
            r"^foo/(?P<bar>[^/]++)\Z",
            ("bar",),
            (TextToken("foo"), _var("/", "[^/]++", "bar")),
        ),
        (
            "foo/{bar}",
            {"bar": "bar"},
            {"bar": "(foo|bar)"},
            "foo",
            r"^foo(?:/(?P<bar>(?:foo|bar)))?\Z",
            ("bar",),
            (TextToken("foo"), _var("/", "(?:foo|bar)", "bar")),
        ),
        (
            "foo/{bar}/{foo}",
            {"bar": "bar", "foo": "foo"},
            {},
            "foo",
            r"^foo(?:/(?P<bar>[^/]++)(?:/(?P<foo>[^/]++))?)?\Z",
            ("bar", "foo"),
            (TextToken("foo"), _var("/", "[^/]++", "bar"), _var("/", "[^/]++", "foo")),
        ),
        (
            "foo/{bar}/{foo}",
            {"foo": "foo"},
            {},
            "foo",
            r"^foo/(?P<bar>[^/]++)(?:/(?P<foo>[^/]++))?\Z",
            ("bar", "foo"),
            (TextToken("foo"), _var("/", "[^/]++", "bar"), _var("/", "[^/]++", "foo")),
        ),
        (
            "{bar}",
            {"bar": "bar"},
            {},
            "",
            r"^(?P<bar>[^/]++)?\Z",
            ("bar",),
            (_var("", "[^/]++", "bar"),),
        ),
        (
            "/{bar}",
            {"bar": "bar"},
            {},
            "",
            r"^/(?P<bar>[^/]++)?\Z",
            ("bar",),
            (_var("/", "[^/]++", "bar"),),
        ),
        (
            "foo-{bar}",
            {},
            {},
            "foo-",
            r"^foo\-(?P<bar>[^/]++)\Z",
            ("bar",),
            (TextToken("foo"), _var("-", "[^/]++", "bar")),
        ),
        (
            "{page}.{_format}",
            {},
            {},
            "",
            r"^(?P<page>[^/\.]++)\.(?P<_format>[^/]++)\Z",
            ("page", "_format"),
            (_var("", "[^/\\.]++", "page"), _var(".", "[^/]++", "_format")),
        ),
        (
            "{x}{y}.{z}",
            {},
            {},
            "",
            r"^(?P<x>[^/\.]+)(?P<y>[^/\.]++)\.(?P<z>[^/]++)\Z",
            ("x", "y", "z"),
            (_var("", "[^/\\.]+", "x"), _var("", "[^/\\.]++", "y"), _var(".", "[^/]++", "z")),
        ),
        (
            "get{what}",
            {"what": "All"},
            {},
            "get",
            r"^get(?:(?P<what>[^/]++))?\Z",
            ("what",),
            (TextToken("get"), _var("", "[^/]++", "what")),
        ),
        (
            "{foo}x",
            {},
            {},
            "",
            r"^(?P<foo>[^/]+)x\Z",
            ("foo",),
            (_var("", "[^/]+", "foo"), TextToken("x")),
        ),
    ],
)
def test_compiled_tables(
    pattern: str,
    defaults: dict[str, Any],
    requirements: dict[str, str],
    prefix: str,
    regex: str,
    variables: tuple[str, ...],
    tokens: tuple[object, ...],
) -> None:
    """The static prefix, regex, variables and (left-to-right) tokens match Symfony's compiler."""
    compiled = Route(pattern, "cb", defaults, requirements).compile()
    assert compiled.static_prefix == prefix
    assert compiled.regex.pattern == regex
    assert compiled.variables == variables
    assert compiled.tokens == tokens


def test_regex_is_dotall_and_case_sensitive() -> None:
    """`.` crosses newlines in requirements (the `s` flag) and matching keeps case."""
    regex = Route("a/{x}", "cb", requirements={"x": ".+"}).compile().regex
    assert regex.match("a/1\n2") is not None
    assert regex.match("A/1") is None
    assert regex.match("a/1\n") is not None  # .+ takes the newline; no `$` before-newline quirk


def test_static_route_does_not_match_before_a_trailing_newline() -> None:
    """The anchor is end-of-string (PCRE's `D` flag), not end-or-before-final-newline."""
    assert Route("a/b", "cb").compile().regex.match("a/b\n") is None


@pytest.mark.parametrize(
    ("requirement", "expected"),
    [
        ("(a|b)", "(?:a|b)"),
        ("(?:a|b)", "(?:a|b)"),
        ("(?P<n>a)", "(?P<n>a)"),
        ("\\(a\\)", "\\(a\\)"),
        ("[(]a[)]", "[(]a[)]"),
        ("[]()](b)", "[]()](?:b)"),
        ("[^](](b)", "[^](](?:b)"),
        ("((a)(b))", "(?:(?:a)(?:b))"),
    ],
)
def test_capturing_groups_become_non_capturing(requirement: str, expected: str) -> None:
    """Requirement groups cannot leak positional captures; escapes and classes are left alone."""
    token = Route("{x}", "cb", requirements={"x": requirement}).compile().tokens[0]
    assert isinstance(token, VariableToken)
    assert token.requirement == expected


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("{1foo}", 'Variable name "1foo" cannot start with a digit'),
        ("{foo}/{foo}", 'cannot reference variable name "foo" more than once'),
        ("{" + "a" * 33 + "}", "cannot be longer than 32 characters"),
        ("é/{x}", 'without setting the "utf8" option'),
    ],
)
def test_bad_patterns_are_refused(pattern: str, message: str) -> None:
    """Digit-first, repeated or over-long names and unflagged UTF-8 patterns fail to compile."""
    with pytest.raises(RouteDefinitionError, match=message):
        Route(pattern, "cb").compile()


def test_32_character_name_is_allowed() -> None:
    """The length limit is inclusive."""
    assert Route("{" + "a" * 32 + "}", "cb").compile().variables == ("a" * 32,)


@pytest.mark.parametrize("requirement", ["\\pL+", "\\p{L}+", "é+", "\\x{0e9}"])
def test_unicode_requirement_needs_utf8_option(requirement: str) -> None:
    """Unicode requirements without the utf8 option are refused."""
    with pytest.raises(RouteDefinitionError, match='for variable "x"'):
        Route("{x}", "cb", requirements={"x": requirement}).compile()


def test_utf8_property_escapes_are_translated() -> None:
    """With utf8, `\\pL`, `\\PL`, `\\pN` and `\\x{..}` work although Python's re lacks them."""
    requirements = {"a": "\\pL+", "b": "\\PL\\pN", "c": "\\x{e9}"}
    pattern = Route("{a}/{b}/{c}", "cb", {}, requirements, {"utf8": True}).compile().regex
    assert pattern.match("héllo/1٣/é") is not None
    assert pattern.match("h3llo/1٣/é") is None


def test_unsupported_property_is_a_definition_error() -> None:
    """A `\\p` class Python cannot express fails at compile time, not at match time."""
    route = Route("{x}", "cb", {}, {"x": "\\p{Lu}"}, {"utf8": True})
    with pytest.raises(RouteDefinitionError, match="valid regular expression"):
        route.compile()


def test_utf8_pattern_and_unicode_word_requirement() -> None:
    """With utf8, non-ASCII patterns compile and `\\w` is Unicode-aware; without it, ASCII."""
    assert Route("é/{x}", "cb", {}, {"x": "\\w+"}, {"utf8": True}).compile().regex.match("é/ü")
    assert Route("a/{x}", "cb", {}, {"x": "\\w+"}).compile().regex.match("a/ü") is None


def test_invalid_regex_is_a_definition_error() -> None:
    """A requirement Python cannot compile raises RouteDefinitionError naming the pattern."""
    with pytest.raises(RouteDefinitionError, match='Route pattern "a/{x}"'):
        Route("a/{x}", "cb", requirements={"x": "[a-"}).compile()
