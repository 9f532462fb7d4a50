"""Channel matching (port of PubSubRouter's MatcherTest and the bundle's WampRouterTest)."""

from __future__ import annotations

from typing import Any

import pytest

from gos_web_socket.app.exceptions import NoRouteMatch, ResourceNotFound
from gos_web_socket.app.router import Route, RouteCollection, Router, WampRequest


def _router(*routes: tuple[str, Route]) -> Router:
    collection = RouteCollection()
    for name, route in routes:
        collection.add(name, route)
    return Router(collection)


def _attributes(router: Router, channel: str) -> dict[str, Any]:
    return dict(router.match(channel).attributes)


# Basics


def test_match_returns_a_wamp_request() -> None:
    """A match carries the route name, the Route, the attributes and the channel."""
    route = Route("channel/{id}", "acme.topic")
    request = _router(("acme", route)).match("channel/42")
    assert request == WampRequest("acme", route, {"id": "42"}, "channel/42")


def test_no_match_raises_with_the_gos_message() -> None:
    """An unmatched channel raises NoRouteMatch (a ResourceNotFound) with GOS's message."""
    router = _router(("foo", Route("foo/{bar}", "cb")))
    with pytest.raises(NoRouteMatch, match='^No routes found for "no-match".$'):
        router.match("no-match")
    with pytest.raises(ResourceNotFound):
        router.match("foo")


def test_no_match_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A miss is logged at error level before raising, as WampRouter does."""
    with caplog.at_level("ERROR"), pytest.raises(NoRouteMatch):
        _router().match("nowhere")
    assert "Unable to find route for nowhere" in caplog.text


def test_empty_router_matches_nothing() -> None:
    """With no routes, every channel is a miss."""
    with pytest.raises(NoRouteMatch):
        _router().match("")


def test_defaults_are_merged_into_attributes() -> None:
    """Route defaults appear in the attributes; captures override them; no `_route` key."""
    router = _router(("foo", Route("foo/{bar}", "cb", {"def": "test", "bar": "x"})))
    assert _attributes(router, "foo/baz") == {"def": "test", "bar": "baz"}


def test_optional_leading_variable() -> None:
    """A leading variable with a default and a requirement still matches both values."""
    router = _router(("bar", Route("{bar}/foo", "cb", {"bar": "bar"}, {"bar": "foo|bar"})))
    assert _attributes(router, "bar/foo") == {"bar": "bar"}
    assert _attributes(router, "foo/foo") == {"bar": "foo"}


def test_only_variable_is_optional_but_keeps_its_separator() -> None:
    """`/{bar}` with a default matches `/` (default used) and `/foo`, but not ``."""
    router = _router(("bar", Route("/{bar}", "cb", {"bar": "bar"}, {"bar": "foo|bar"})))
    assert _attributes(router, "/foo") == {"bar": "foo"}
    assert _attributes(router, "/") == {"bar": "bar"}
    with pytest.raises(NoRouteMatch):
        router.match("")


def test_only_optional_variables() -> None:
    """When every variable is optional, any prefix of the channel matches."""
    router = _router(("bar", Route("/{foo}/{bar}", "cb", {"foo": "foo", "bar": "bar"})))
    assert _attributes(router, "/") == {"foo": "foo", "bar": "bar"}
    assert _attributes(router, "/a") == {"foo": "a", "bar": "bar"}
    assert _attributes(router, "/a/b") == {"foo": "a", "bar": "b"}


def test_null_default_makes_a_trailing_variable_optional() -> None:
    """`{page?}` gives a null default: the variable may be left out and stays None."""
    router = _router(("list", Route("news/{page?}", "cb")))
    assert _attributes(router, "news") == {"page": None}
    assert _attributes(router, "news/3") == {"page": "3"}


def test_special_route_names() -> None:
    """Route names are opaque strings, whatever characters they hold."""
    router = _router(("$péß^a|", Route("bar", "cb")))
    assert router.match("bar").route_name == "$péß^a|"


def test_nested_collection_order() -> None:
    """Routes added through sub-collections keep their position in the order."""
    collection = RouteCollection()
    sub = RouteCollection()
    for name in ("a", "b", "c"):
        sub.add(name, Route(f"p/{name}", "cb"))
    collection.add_collection(sub)
    collection.add("baz", Route("{baz}", "cb"))
    sub = RouteCollection()
    sub.add("buz", Route("prefix/buz", "cb"))
    collection.add_collection(sub)
    router = Router(collection)
    assert router.match("p/a").route_name == "a"
    assert router.match("p").route_name == "baz"
    assert router.match("prefix/buz").route_name == "buz"


def test_utf8_prefixes() -> None:
    """Routes that differ only in a non-ASCII character are told apart."""
    router = _router(
        ("a", Route("é{foo}", "cb", options={"utf8": True})),
        ("b", Route("è{bar}", "cb", options={"utf8": True})),
    )
    assert router.match("éo").route_name == "a"
    assert router.match("èo").route_name == "b"


def test_matching_is_case_sensitive_and_anchored() -> None:
    """The whole channel must match, with exact case."""
    router = _router(("chat", Route("chat/{room}", "cb", requirements={"room": "[a-z]+"})))
    for channel in ("Chat/lobby", "chat/Lobby", "xchat/lobby", "chat/lobby/x", "chat/lobby\n"):
        with pytest.raises(NoRouteMatch):
            router.match(channel)


def test_attributes_are_a_fresh_mapping_per_match() -> None:
    """Changing one request's attributes does not leak into the next match."""
    router = _router(("s", Route("static", "cb", {"a": 1})), ("d", Route("d/{x}", "cb")))
    for channel in ("static", "d/1"):
        first = router.match(channel).attributes
        assert isinstance(first, dict)
        first["a"] = 2
        assert router.match(channel).attributes.get("a") != 2


# Precedence


def test_overridden_route_wins_and_old_pattern_stops_matching() -> None:
    """A route re-added under the same name replaces the old one entirely."""
    collection = RouteCollection()
    collection.add("foo", Route("foo", "cb"))
    override = RouteCollection()
    override.add("foo", Route("foo1", "cb"))
    collection.add_collection(override)
    router = Router(collection)
    assert router.match("foo1").route_name == "foo"
    with pytest.raises(NoRouteMatch):
        router.match("foo")


def test_first_matching_route_wins_for_multiple_params() -> None:
    """Routes are tried in definition order; the first full match wins."""
    router = _router(
        ("foo1", Route("foo/{a}/{b}", "cb")),
        ("foo2", Route("foo/{a}/test/test/{b}", "cb")),
        ("foo3", Route("foo/{a}/{b}/{c}/{d}", "cb")),
    )
    assert router.match("foo/test/test/test/bar").route_name == "foo2"


def test_catch_all_does_not_shadow_an_earlier_route() -> None:
    """A later catch-all loses to an earlier `.html` route, even across slashes."""
    router = _router(
        ("a", Route("{id}.html", "cb", requirements={"id": ".+"})),
        ("b", Route("{all}", "cb", requirements={"all": ".+"})),
    )
    request = router.match("foo/bar.html")
    assert (request.route_name, dict(request.attributes)) == ("a", {"id": "foo/bar"})


def test_earlier_dynamic_route_beats_a_later_static_one() -> None:
    """The static-channel shortcut keeps definition order: an earlier pattern still wins."""
    router = _router(("dynamic", Route("news/{id}", "cb")), ("static", Route("news/latest", "cb")))
    assert router.match("news/latest").route_name == "dynamic"
    assert dict(router.match("news/latest").attributes) == {"id": "latest"}


def test_earlier_static_route_beats_a_later_dynamic_one() -> None:
    """A static route defined first wins over a later pattern matching the same channel."""
    router = _router(("static", Route("news/latest", "cb")), ("dynamic", Route("news/{id}", "cb")))
    assert router.match("news/latest").route_name == "static"
    assert router.match("news/1").route_name == "dynamic"


def test_duplicate_static_patterns_resolve_to_the_first() -> None:
    """Two routes with one static pattern: the first defined is the one matched."""
    router = _router(("one", Route("same", "cb")), ("two", Route("same", "cb")))
    assert router.match("same").route_name == "one"


# Regex details


def test_matching_is_eager() -> None:
    """A `.+` requirement takes as much as it can, leaving the rest to the next variable."""
    router = _router(("foo", Route("{foo}-{bar}-", "cb", requirements={"foo": ".+", "bar": ".+"})))
    assert _attributes(router, "text1-text2-text3-text4-") == {
        "foo": "text1-text2-text3",
        "bar": "text4",
    }


def test_adjacent_variables() -> None:
    """Adjacent variables split the text by their requirements; y|Y leaves the rest to z."""
    route = Route(
        "{w}{x}{y}{z}.{_format}",
        "cb",
        {"z": "default-z", "_format": "html"},
        {"y": "y|Y"},
    )
    router = _router(("test", route))
    assert _attributes(router, "wwwwwxYZ.xml") == {
        "w": "wwwww",
        "x": "x",
        "y": "Y",
        "z": "Z",
        "_format": "xml",
    }
    assert _attributes(router, "wwwwwxyZZZ") == {
        "w": "wwwww",
        "x": "x",
        "y": "y",
        "z": "ZZZ",
        "_format": "html",
    }
    assert _attributes(router, "wwwwwxy") == {
        "w": "wwwww",
        "x": "x",
        "y": "y",
        "z": "default-z",
        "_format": "html",
    }
    with pytest.raises(NoRouteMatch):
        router.match("wxy.html")


def test_optional_variable_without_a_real_separator() -> None:
    """`get{what}` matches `get` (default) and `getSites`, but not `ge`."""
    router = _router(("test", Route("get{what}", "cb", {"what": "All"})))
    assert _attributes(router, "get") == {"what": "All"}
    assert _attributes(router, "getSites") == {"what": "Sites"}
    with pytest.raises(NoRouteMatch):
        router.match("ge")


def test_default_requirement_excludes_the_next_separator_only_for_earlier_variables() -> None:
    """`{page}.{_format}` stops page at the first dot; the format keeps the remaining dots."""
    router = _router(("test", Route("{page}.{_format}", "cb")))
    assert _attributes(router, "index.mobile.html") == {"page": "index", "_format": "mobile.html"}


def test_default_requirement_excludes_slash() -> None:
    """No default requirement accepts a slash."""
    router = _router(("test", Route("{page}.{_format}", "cb")))
    with pytest.raises(NoRouteMatch):
        router.match("index.sl/ash")


def test_default_requirement_excludes_the_next_separator() -> None:
    """page may not contain the dot that separates it from a constrained _format."""
    router = _router(
        ("test", Route("{page}.{_format}", "cb", requirements={"_format": "html|xml"}))
    )
    with pytest.raises(NoRouteMatch):
        router.match("do.t.html")


def test_capturing_groups_in_requirements() -> None:
    """Groups in requirements do not shift or add attributes."""
    router = _router(("a", Route("{a}/{b}", "cb", requirements={"a": "(a|b)"})))
    assert _attributes(router, "a/b") == {"a": "a", "b": "b"}


def test_unmatched_named_group_in_a_requirement_is_ignored() -> None:
    """A named group inside a requirement that did not take part adds no attribute."""
    route = Route("{a}", "cb", requirements={"a": "(?P<x>1)|2"})
    assert _attributes(_router(("a", route)), "2") == {"a": "2"}
    assert _attributes(_router(("a", route)), "1") == {"a": "1", "x": "1"}


def test_empty_capture_overrides_the_default() -> None:
    """An empty capture is a value (only non-participating captures are skipped)."""
    router = _router(("a", Route("a/{b}", "cb", {"b": "x"}, {"b": ".*"})))
    assert _attributes(router, "a/") == {"b": ""}
    assert _attributes(router, "a") == {"b": "x"}


def test_dot_matches_newlines() -> None:
    """Requirements are matched in DOTALL mode, like PCRE's `s` flag."""
    router = _router(("a", Route("a/{b}", "cb", requirements={"b": ".+"})))
    assert _attributes(router, "a/x\ny") == {"b": "x\ny"}


def test_collection_property_returns_the_collection() -> None:
    """router.collection is the collection it was built from."""
    collection = RouteCollection()
    assert Router(collection).collection is collection
