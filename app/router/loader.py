"""Load pub/sub routes from routing files in the GosPubSubRouterBundle 2.x YAML format."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from gos_web_socket.app.exceptions import RouteDefinitionError
from gos_web_socket.app.router.collection import RouteCollection
from gos_web_socket.app.router.payload import resolve_payload
from gos_web_socket.app.router.route import Route, RouteHistory
from gos_web_socket.app.router.router import Router

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = ["ALLOWED_KEYS", "load_router", "load_routes", "load_routes_from_mapping"]

# Keys of a route or import entry; `channel` and `handler` are deprecated aliases.
_KEYS = (
    "resource type channel pattern handler callback defaults requirements options exclude history "
    "payload presence"
)
ALLOWED_KEYS = tuple(_KEYS.split())

# The files being loaded, outermost first, to refuse an import cycle instead of recursing forever.
_loading: ContextVar[tuple[Path, ...]] = ContextVar("_loading", default=())


def load_routes(path: str | Path) -> RouteCollection:
    """Load a routing file and the files it imports; any problem is a RouteDefinitionError."""
    file = Path(path).resolve()
    chain = _loading.get()
    if file in chain:
        cycle = " -> ".join(str(p) for p in (*chain, file))
        raise RouteDefinitionError(f'The routing file "{file}" imports itself: {cycle}.')
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise RouteDefinitionError(f'Cannot read the routing file "{file}": {reason}.') from exc
    except yaml.YAMLError as exc:
        raise RouteDefinitionError(f'The file "{file}" does not contain valid YAML: {exc}') from exc
    token = _loading.set((*chain, file))
    try:
        return load_routes_from_mapping(data, str(file))
    finally:
        _loading.reset(token)


def load_router(resources: Iterable[str | Path]) -> Router:
    """Every file of ``resources`` (``server.router.resources``), in order, in one router."""
    collection = RouteCollection()
    for resource in resources:
        collection.add_collection(load_routes(resource))
    return Router(collection)


def load_routes_from_mapping(
    data: Mapping[str, Any] | None, source: str = "<memory>"
) -> RouteCollection:
    """Build routes from parsed YAML; ``resource`` paths are relative to ``source``'s folder."""
    collection = RouteCollection()
    if data is None:  # an empty file
        return collection
    if not isinstance(data, Mapping):
        raise RouteDefinitionError(f'The file "{source}" must contain a YAML mapping.')
    for key, definition in data.items():
        name = str(key)
        config = _validate(definition, name, source)
        if "resource" in config:
            collection.add_collection(_import(config, name, source))
        else:
            collection.add(name, _route(config, name, source))
    return collection


def _validate(definition: object, name: str, source: str) -> dict[str, Any]:
    """Check an entry's keys and resolve the deprecated aliases; null values count as absent."""
    if not isinstance(definition, Mapping):
        raise RouteDefinitionError(f'The definition of "{name}" in "{source}" must be a mapping.')
    unknown = '", "'.join(str(key) for key in definition if key not in ALLOWED_KEYS)
    if unknown:
        allowed = '", "'.join(ALLOWED_KEYS)
        raise RouteDefinitionError(
            f'The routing file "{source}" contains unsupported keys for "{name}": "{unknown}". '
            f'Expected one of: "{allowed}".'
        )
    config = {key: value for key, value in definition.items() if value is not None}
    if "resource" in config:
        for key in ("pattern", "channel", "callback", "handler"):
            if key in config:
                raise RouteDefinitionError(
                    f'The routing file "{source}" must not specify both the "resource" key '
                    f'and the "{key}" key for "{name}". '
                    "Choose between an import and a route definition."
                )
        return config
    if "type" in config:
        raise RouteDefinitionError(
            f'The "type" key for the route definition "{name}" in "{source}" is unsupported. '
            'It is only available for imports in combination with the "resource" key.'
        )
    config["pattern"] = _aliased(config, "pattern", "channel", name, source)
    if _procedures_only(config) and "callback" not in config and "handler" not in config:
        config["callback"] = ""  # clients register its procedures; no server handler
    else:
        config["callback"] = _aliased(config, "callback", "handler", name, source)
    return config


def _procedures_only(config: dict[str, Any]) -> bool:
    """A route with ``options.auth.register`` may leave ``callback`` out: it serves the
    procedures WAMP v2 clients register (docs/wamp2.md), not a server handler."""
    options = config.get("options")
    auth = options.get("auth") if isinstance(options, Mapping) else None
    return isinstance(auth, Mapping) and "register" in auth


def _aliased(config: dict[str, Any], key: str, alias: str, name: str, source: str) -> Any:
    if key in config and alias in config:
        raise RouteDefinitionError(
            f'The route "{name}" in file "{source}" must not specify both the "{alias}" key '
            f'and the "{key}" key.'
        )
    if alias in config:
        warnings.warn(
            f'Setting the "{alias}" key for the route "{name}" in file "{source}" is deprecated, '
            f'use the "{key}" key instead.',
            DeprecationWarning,
            stacklevel=5,
        )
        return config.pop(alias)
    if key not in config:
        hint = " (or options.auth.register for client procedures only)" if key == "callback" else ""
        raise RouteDefinitionError(
            f'You must define a "{key}" for the route "{name}" in file "{source}"{hint}.'
        )
    return config[key]


def _route(config: dict[str, Any], name: str, source: str) -> Route:
    pattern, callback = config["pattern"], config["callback"]
    if isinstance(callback, Mapping):  # the legacy `handler: {callback: ..., args: [...]}` shape
        callback = callback.get("callback")
    if not isinstance(pattern, str) or not isinstance(callback, str):
        what = "pattern" if not isinstance(pattern, str) else "callback"
        raise RouteDefinitionError(
            f'The "{what}" of route "{name}" in "{source}" must be a string.'
        )
    defaults, requirements, options = _extras(config, name, source)
    history = _history(config, f'route "{name}" in "{source}":')
    payload = _payload(config, f'route "{name}" in "{source}":')
    presence = _presence(config, f'route "{name}" in "{source}":')
    with _context(f'route "{name}" in "{source}"'):
        route = Route(
            pattern, callback, defaults, requirements, options, history, payload, presence=presence
        )
        route.compile()
    return route


def _import(config: dict[str, Any], name: str, source: str) -> RouteCollection:
    """Load an imported file, then lay the entry's defaults, requirements and options over it."""
    resource, kind = config["resource"], config.get("type")
    if not isinstance(resource, str) or kind not in (None, "yaml"):
        raise RouteDefinitionError(
            f'The import "{name}" in "{source}" needs a YAML file path as "resource" '
            f"(got {resource!r} of type {kind!r}); only YAML routing files are supported."
        )
    defaults, requirements, options = _extras(config, name, source)
    history = _history(config, f'import "{name}" in "{source}":')
    payload = _payload(config, f'import "{name}" in "{source}":')
    presence = _presence(config, f'import "{name}" in "{source}":')
    collection = RouteCollection()
    with _context(f'import "{name}" in "{source}"'):
        for route_name, route in load_routes(Path(source).parent / resource).items():
            merged = Route(route.pattern, route.callback, route.defaults | defaults, requirements)
            # The route's own requirements are sanitised already; the import's override them.
            merged.requirements = route.requirements | merged.requirements
            merged.options = route.options | options
            merged.history = history or route.history
            merged.payload = payload or route.payload
            merged.presence = presence or route.presence
            merged.compile()
            collection.add(route_name, merged)
    return collection


def _extras(
    config: dict[str, Any], name: str, source: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The entry's ``defaults``, ``requirements`` and ``options``, each checked to be a mapping."""
    found: list[dict[str, Any]] = []
    for key in ("defaults", "requirements", "options"):
        value = config.get(key, {})
        if key == "requirements" and isinstance(value, list):
            value = dict(enumerate(value))  # PHP sees a YAML list as integer keys
        if not isinstance(value, Mapping):
            raise RouteDefinitionError(f'The "{key}" of "{name}" in "{source}" must be a mapping.')
        for item, content in value.items():
            if key == "requirements" and not isinstance(item, str):
                raise RouteDefinitionError(
                    f"A placeholder name must be a string ({item!r} given). Did you forget to "
                    f'specify the placeholder key for the requirement "{content}" of route '
                    f'"{name}" in "{source}"?'
                )
        found.append(dict(value))
    return found[0], found[1], found[2]


def _history(config: dict[str, Any], where: str) -> RouteHistory | None:
    value = config.get("history")
    return None if value is None else RouteHistory.parse(value, where)


def _payload(config: dict[str, Any], where: str) -> type[BaseModel] | None:
    """The model ``payload`` names, imported now: a wrong one stops start-up (one line)."""
    value = config.get("payload")
    return None if value is None else resolve_payload(value, where)


def _presence(config: dict[str, Any], where: str) -> bool:
    """``presence: true|false`` (off when absent): its channels track who is subscribed."""
    value = config.get("presence", False)
    if not isinstance(value, bool):
        raise RouteDefinitionError(f"{where} presence: {value!r}: expected true or false")
    return value


@contextmanager
def _context(what: str) -> Iterator[None]:
    """Prefix a definition error with the entry and file it comes from."""
    try:
        yield
    except RouteDefinitionError as exc:
        raise RouteDefinitionError(f"Invalid {what}: {exc}") from exc
