"""Channel generation (port of PubSubRouter's GeneratorTest and the bundle's WampRouterTest)."""

from __future__ import annotations

from typing import Any

import pytest

from gos_web_socket.app.exceptions import (
    InvalidParameter,
    MissingMandatoryParameters,
    ResourceNotFound,
    RouteNotFound,
)
from gos_web_socket.app.router import Route, RouteCollection, Router


def _generate(route: Route, parameters: dict[str, Any] | None = None) -> str:
    collection = RouteCollection()
    collection.add("test", route)
    return Router(collection).generate("test", parameters)


# Basics


def test_static_route() -> None:
    """A route without variables generates its pattern."""
    assert _generate(Route("abc/123", "cb")) == "abc/123"


def test_one_parameter() -> None:
    """A variable is replaced by its value."""
    assert _generate(Route("testing/{foo}", "cb"), {"foo": "bar"}) == "testing/bar"


def test_zero_is_a_valid_value() -> None:
    """0 is a value, not a missing one."""
    assert _generate(Route("testing/{page}", "cb"), {"page": 0}) == "testing/0"


def test_extra_parameters_are_ignored() -> None:
    """Parameters that name no variable are dropped, never appended."""
    assert _generate(Route("testing", "cb"), {"foo": "bar"}) == "testing"


def test_adjacent_variables() -> None:
    """`{x}{y}{z}.{_format}` fills adjacent variables and omits trailing defaults."""
    route = Route("{x}{y}{z}.{_format}", "cb", {"z": "default-z", "_format": "html"}, {"y": "\\d+"})
    assert _generate(route, {"x": "foo", "y": "123"}) == "foo123"
    assert (
        _generate(route, {"x": "foo", "y": "123", "z": "bar", "_format": "xml"}) == "foo123bar.xml"
    )
    with pytest.raises(InvalidParameter):
        _generate(route, {"x": "do.t", "y": "123", "z": "bar", "_format": "xml"})


def test_values_are_inserted_raw() -> None:
    """No escaping or URL-encoding is applied to values."""
    route = Route("chat/{room}", "cb", requirements={"room": ".+"})
    assert _generate(route, {"room": "a b/ü?&%"}) == "chat/a b/ü?&%"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, "1"), (2.0, "2"), (2.5, "2.5"), (7, "7")],
)
def test_values_are_stringified_like_php(value: object, expected: str) -> None:
    """Values are cast as PHP's (string) would: true is "1", 2.0 is "2"."""
    assert _generate(Route("n/{v}", "cb"), {"v": value}) == f"n/{expected}"


# Optionals


def test_optional_parameter_in_between() -> None:
    """A value after an optional one forces the optional one out; all defaults give ``."""
    route = Route("{slug}/{page}", "cb", {"slug": "index", "page": 0})
    assert _generate(route, {"page": 1}) == "index/1"
    assert _generate(route) == ""


def test_optional_variable_without_real_separator() -> None:
    """`get{what}` omits its default and inserts other values without a separator."""
    route = Route("get{what}", "cb", {"what": "All"})
    assert _generate(route) == "get"
    assert _generate(route, {"what": "Sites"}) == "getSites"


def test_value_equal_to_default_is_omitted_by_string_comparison() -> None:
    """A trailing value equal to its default (as strings) is left out with its separator."""
    route = Route("page/{n}", "cb", {"n": 1})
    assert _generate(route, {"n": "1"}) == "page"
    assert _generate(route, {"n": 2}) == "page/2"


def test_format_with_a_dot() -> None:
    """The last variable's default requirement accepts the dots of `mobile.html`."""
    route = Route("{page}.{_format}", "cb")
    assert _generate(route, {"page": "index", "_format": "mobile.html"}) == "index.mobile.html"


def test_no_trailing_separator_for_several_null_optionals() -> None:
    """Trailing variables with null defaults vanish with their separators."""
    route = Route("category/{slug1}/{slug2}/{slug3}", "cb", {"slug2": None, "slug3": None})
    assert _generate(route, {"slug1": "foo"}) == "category/foo"


def test_null_for_an_optional_parameter_is_ignored() -> None:
    """Passing None for an optional variable omits it."""
    assert _generate(Route("test/{default}", "cb", {"default": 0}), {"default": None}) == "test"


def test_null_default_on_trailing_variable_is_omitted() -> None:
    """`testing.{format}` with a null default generates `testing`."""
    assert _generate(Route("testing.{format}", "cb", {"format": None})) == "testing"


def test_integer_default_can_be_overridden() -> None:
    """A non-string default is replaced by a given value."""
    assert _generate(Route("{default}", "cb", {"default": 0}), {"default": "foo"}) == "foo"


# Errors


def test_unknown_route() -> None:
    """An unknown route name raises RouteNotFound, a ResourceNotFound."""
    with pytest.raises(RouteNotFound, match='named route "test" as such route does not exist'):
        Router(RouteCollection()).generate("test")
    assert issubclass(RouteNotFound, ResourceNotFound)


def test_missing_mandatory_parameters_are_listed() -> None:
    """Every variable without a value or default is named, in pattern order."""
    route = Route("a/{foo}/{bar}/{baz}", "cb", {"bar": 1})
    with pytest.raises(
        MissingMandatoryParameters,
        match=r'^Some mandatory parameters are missing \("foo", "baz"\) '
        r'to generate a path for route "test"\.$',
    ):
        _generate(route)


def test_none_without_default_counts_as_missing() -> None:
    """None for a variable that has no default is reported as missing."""
    with pytest.raises(MissingMandatoryParameters, match='"foo"'):
        _generate(Route("testing/{foo}", "cb"), {"foo": None})


def test_null_default_on_a_non_optional_variable() -> None:
    """A null default cannot fill a variable followed by static text."""
    with pytest.raises(InvalidParameter):
        _generate(Route("testing/{foo}/bar", "cb", {"foo": None}))


@pytest.mark.parametrize(
    ("route", "parameters"),
    [
        (Route("testing/{foo}", "cb", {"foo": "1"}, {"foo": "d+"}), {"foo": "bar"}),
        (Route("testing/{foo}", "cb", requirements={"foo": "1|2"}), {"foo": "0"}),
        (Route("testing/{foo}", "cb", requirements={"foo": "1|2"}), {"foo": "12"}),
        (Route("testing/{foo}", "cb", requirements={"foo": "d+"}), {"foo": "bar"}),
        (Route("testing/{foo}", "cb", {}, {"foo": "\\pL+"}, {"utf8": True}), {"foo": "abc123"}),
        (Route("{slug}", "cb", requirements={"slug": ".+"}), {"slug": ""}),
        (Route("{page}.{_format}", "cb"), {"page": "index", "_format": "sl/ash"}),
        (Route("{page}.{_format}", "cb"), {"page": "do.t", "_format": "html"}),
    ],
)
def test_requirement_mismatch(route: Route, parameters: dict[str, Any]) -> None:
    """Optional, mandatory, utf8 and default requirements all reject a non-matching value."""
    with pytest.raises(InvalidParameter):
        _generate(route, parameters)


def test_invalid_parameter_message() -> None:
    """The message names the parameter, route, requirement and given value."""
    route = Route("testing/{foo}", "cb", requirements={"foo": "\\d+"})
    with pytest.raises(
        InvalidParameter,
        match=r'^Parameter "foo" for route "test" must match "\\d\+" \("bar" given\) '
        r"to generate a corresponding path\.$",
    ):
        _generate(route, {"foo": "bar"})


def test_requirement_check_is_case_insensitive() -> None:
    """Generation checks requirements case-insensitively (matching does not)."""
    assert _generate(Route("a/{x}", "cb", requirements={"x": "[a-z]+"}), {"x": "ABC"}) == "a/ABC"


def test_utf8_requirement_accepts_letters() -> None:
    """`\\pL+` with the utf8 option accepts non-ASCII letters."""
    route = Route("testing/{foo}", "cb", {}, {"foo": "\\pL+"}, {"utf8": True})
    assert _generate(route, {"foo": "héllo"}) == "testing/héllo"


def test_lookarounds_are_ignored() -> None:
    """Lookarounds in a requirement are dropped for the generation check."""
    route = Route("a/{x}", "cb", requirements={"x": "(?!admin)[a-z]+(?<=n)"})
    assert _generate(route, {"x": "admin"}) == "a/admin"
    with pytest.raises(InvalidParameter):
        _generate(route, {"x": "123"})
