"""RouteCollection behaviour (port of PubSubRouter's RouteCollectionTest)."""

from __future__ import annotations

from gos_web_socket.app.router import Route, RouteCollection


def _collection(*names: str) -> RouteCollection:
    collection = RouteCollection()
    for name in names:
        collection.add(name, Route(f"{name}/{{id}}", f"{name}.topic"))
    return collection


def test_add_get_count_and_contains() -> None:
    """Added routes can be fetched by name, counted and tested for membership."""
    collection = _collection("a", "b")
    route = collection.get("a")
    assert route is not None and route.pattern == "a/{id}"
    assert collection["b"].callback == "b.topic"
    assert len(collection) == 2
    assert "a" in collection and "c" not in collection


def test_get_unknown_name_returns_none() -> None:
    """get() on an unknown name gives None instead of raising."""
    assert RouteCollection().get("missing") is None


def test_iteration_yields_names_in_definition_order() -> None:
    """Iterating yields names; items() yields (name, route) pairs, both in order."""
    collection = _collection("b", "a", "c")
    assert list(collection) == ["b", "a", "c"]
    assert [(name, route.callback) for name, route in collection.items()] == [
        ("b", "b.topic"),
        ("a", "a.topic"),
        ("c", "c.topic"),
    ]


def test_re_adding_a_name_replaces_it_and_moves_it_last() -> None:
    """An overridden route takes the new definition and the last position."""
    collection = _collection("foo", "bar")
    replacement = Route("foo1", "other")
    collection.add("foo", replacement)
    assert list(collection) == ["bar", "foo"]
    assert collection.get("foo") is replacement
    assert len(collection) == 2


def test_add_collection_overrides_and_appends() -> None:
    """Routes from another collection override same-named ones and go to the end."""
    collection = _collection("foo", "bar", "baz")
    collection.add_collection(_collection("bar", "qux"))
    assert list(collection) == ["foo", "baz", "bar", "qux"]


def test_deep_override_through_nested_collections() -> None:
    """An override survives being added through several levels of collections."""
    inner = RouteCollection()
    inner.add("foo", Route("foo1", "deep"))
    middle = RouteCollection()
    middle.add_collection(inner)
    collection = _collection("foo")
    collection.add_collection(middle)
    assert collection["foo"].pattern == "foo1"


def test_remove_one_or_several_names() -> None:
    """remove() drops the named routes and ignores unknown names."""
    collection = _collection("a", "b", "c", "d")
    collection.remove("a")
    collection.remove("b", "c", "unknown")
    assert list(collection) == ["d"]


def test_copy_clones_routes() -> None:
    """copy() gives equal but distinct routes; changing the copy leaves the original alone."""
    collection = _collection("a", "b")
    clone = collection.copy()
    assert len(clone) == 2
    assert clone["a"] == collection["a"]
    assert clone["a"] is not collection["a"]
    clone["a"].defaults["id"] = 1
    clone.remove("b")
    assert collection["a"].defaults == {}
    assert list(collection) == ["a", "b"]
