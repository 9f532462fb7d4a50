"""YAML routing files in the GOS 2.x format (port of PubSubRouter's YamlFileLoaderTest)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gos_web_socket.app.exceptions import RouteDefinitionError
from gos_web_socket.app.router import Router, load_routes, load_routes_from_mapping

FIXTURES = Path(__file__).parent / "fixtures" / "routing"


def test_empty_file_gives_an_empty_collection() -> None:
    """A file with no content loads as no routes."""
    assert len(load_routes(FIXTURES / "empty.yaml")) == 0


def test_none_mapping_gives_an_empty_collection() -> None:
    """load_routes_from_mapping(None), i.e. parsed empty YAML, loads as no routes."""
    assert len(load_routes_from_mapping(None)) == 0


def test_routes_and_import() -> None:
    """Routes load in file order, inline syntax included, then the imported ones."""
    collection = load_routes(str(FIXTURES / "routes.yaml"))
    assert list(collection) == ["acme_topic", "acme_rpc", "chat_room", "chat_user"]
    topic = collection["acme_topic"]
    assert (topic.pattern, topic.callback) == ("acme/channel/{room}", "acme.topic")
    assert topic.defaults == {"room": "lobby"}
    assert topic.requirements == {"room": "[a-z]+"}
    rpc = collection["acme_rpc"]
    assert (rpc.pattern, rpc.requirements) == ("acme/rpc/{method}", {"method": "\\w+"})


def test_import_extras_override_the_imported_routes() -> None:
    """An import's defaults, requirements and options are laid over each imported route."""
    collection = load_routes(FIXTURES / "routes.yaml")
    room = collection["chat_room"]
    assert room.defaults == {"room": "main", "kind": "chat"}
    assert room.requirements == {"id": "\\d+"}
    assert room.options == {"utf8": True}
    user = collection["chat_user"]
    assert user.requirements == {"id": "\\d+"}
    assert user.options == {"utf8": True, "extra": "kept"}
    router = Router(collection)
    assert router.match("chat/user/42").route_name == "chat_user"
    assert dict(router.match("chat").attributes) == {"room": "main", "kind": "chat"}


def test_deprecated_channel_and_handler_still_load() -> None:
    """`channel` and `handler` work as aliases but warn; the legacy handler mapping too."""
    with pytest.deprecated_call():
        collection = load_routes(FIXTURES / "deprecated.yaml")
    assert (collection["old_style"].pattern, collection["old_style"].callback) == (
        "old/{id}",
        "old.topic",
    )
    assert collection["legacy_handler"].callback == "legacy.topic"


@pytest.mark.parametrize(
    ("fixture", "message"),
    [
        ("not_mapping.yaml", "must contain a YAML mapping"),
        ("list.yaml", "must contain a YAML mapping"),
        ("route_not_mapping.yaml", 'The definition of "route" in ".*" must be a mapping'),
        ("unknown_keys.yaml", 'unsupported keys for "route": "path". Expected one of: "resource"'),
        ("bad_yaml.yaml", "does not contain valid YAML"),
        ("type_without_resource.yaml", 'The "type" key for the route definition "route"'),
        ("pattern_and_channel.yaml", 'both the "channel" key and the "pattern" key'),
        ("callback_and_handler.yaml", 'both the "handler" key and the "callback" key'),
        ("resource_and_pattern.yaml", 'both the "resource" key and the "pattern" key for "route"'),
        ("missing_pattern.yaml", 'You must define a "pattern" for the route "route"'),
        ("missing_callback.yaml", 'You must define a "callback" for the route "route"'),
        ("requirements_list.yaml", "A placeholder name must be a string \\(0 given\\)"),
        ("bad_route.yaml", 'Invalid route "route" in .*cannot start with a digit'),
    ],
)
def test_invalid_files(fixture: str, message: str) -> None:
    """Malformed files raise RouteDefinitionError naming the file (and the route, if any)."""
    path = FIXTURES / fixture
    with pytest.raises(RouteDefinitionError, match=message) as caught:
        load_routes(path)
    assert str(path.resolve()) in str(caught.value)


def test_missing_file() -> None:
    """A file that does not exist is a RouteDefinitionError naming it."""
    with pytest.raises(RouteDefinitionError, match="Cannot read the routing file .*nope.yaml"):
        load_routes(FIXTURES / "nope.yaml")


def test_missing_import_names_the_importing_entry() -> None:
    """An import of a missing file names the import entry, its file and the missing file."""
    with pytest.raises(
        RouteDefinitionError, match=r'Invalid import "gone" in ".*missing_import.yaml".*does_not'
    ):
        load_routes(FIXTURES / "missing_import.yaml")


def test_circular_import_is_refused() -> None:
    """Files that import each other raise instead of recursing forever."""
    with pytest.raises(RouteDefinitionError, match="imports itself"):
        load_routes(FIXTURES / "circular_a.yaml")


def _load(data: dict[str, Any]) -> None:
    load_routes_from_mapping(data, "mem.yaml")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"r": {"pattern": 5, "callback": "cb"}}, 'The "pattern" of route "r" in "mem.yaml"'),
        ({"r": {"pattern": "a", "callback": ["x"]}}, 'The "callback" of route "r"'),
        ({"r": {"pattern": "a", "callback": "cb", "defaults": "x"}}, 'The "defaults" of "r"'),
        ({"r": {"pattern": "{a}", "callback": "cb", "requirements": {1: "x"}}}, "\\(1 given\\)"),
        ({"r": {"pattern": "{a}", "callback": "cb", "requirements": {"a": ""}}}, "be empty"),
        ({"r": {"resource": 5}}, 'The import "r" in "mem.yaml" needs a YAML file'),
        ({"r": {"resource": "x.xml", "type": "xml"}}, "of type 'xml'"),
        ({"r": {"resource": "x", "callback": "cb"}}, 'the "callback" key for "r"'),
    ],
)
def test_invalid_mappings(data: dict[str, Any], message: str) -> None:
    """Wrongly typed values raise RouteDefinitionError naming the source and the entry."""
    with pytest.raises(RouteDefinitionError, match=message) as caught:
        _load(data)
    assert "mem.yaml" in str(caught.value)
    assert '"r"' in str(caught.value)


def test_null_values_count_as_absent() -> None:
    """A key set to null is treated as not given, as PHP's isset() does."""
    collection = load_routes_from_mapping(
        {"r": {"pattern": "a/{b}", "callback": "cb", "defaults": None, "type": None}}
    )
    assert collection["r"].defaults == {}


def test_mapping_import_resolves_relative_to_source() -> None:
    """In-memory data imports relative to the folder of its ``source``."""
    source = str(FIXTURES / "virtual.yaml")
    collection = load_routes_from_mapping({"i": {"resource": "imported.yaml"}}, source)
    assert list(collection) == ["chat_room", "chat_user"]
