"""An AsyncAPI 3.0 document of every route: what the front end may subscribe to and publish.

The document describes the WebSocket server as the application: a subscription is an
operation the server ``send``s on (broadcasts and pushes reach the subscribers), a client's
publish one it ``receive``s, an RPC route a ``receive`` with a ``reply``. Each channel's
``address`` is the route pattern, its parameters carry their requirement and default, and its
message payload is the route's payload model as JSON schema (any JSON without one). Who may
subscribe, publish, call or register comes from the route's ``options.auth`` rules
(``x-gos-auth``); an operation nobody may do is left out. A route without a callback serves
the procedures WAMP v2 clients register: a call route too.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from pydantic import BaseModel

from gos_web_socket.app.auth.authorization import RouteRules
from gos_web_socket.app.exceptions import ConfigurationError
from gos_web_socket.app.router import Route, Router
from gos_web_socket.app.router.route import VariableToken

__all__ = ["ANY_JSON", "asyncapi_document", "component_name"]

ASYNCAPI_VERSION = "3.0.0"
ANY_JSON: dict[str, Any] = {"description": "Any JSON value: the route names no payload model."}
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")
_REF = "#/components/schemas/{model}"


def component_name(name: str) -> str:
    """A route or model name as AsyncAPI allows it in a component or channel key."""
    return _UNSAFE.sub("_", name)


def asyncapi_document(
    router: Router,
    rules: RouteRules,
    *,
    title: str,
    version: str,
    servers: Mapping[str, Mapping[str, Any]],
    rpc_callbacks: Collection[str] = (),
) -> dict[str, Any]:
    """The document of ``router``'s routes; ``rpc_callbacks`` names the RPC handlers (their
    routes are calls, not pub/sub).

    Raises:
        ConfigurationError: two routes give one channel key, or two payload models one
            schema name (each one line).
    """
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    models: dict[str, type[BaseModel]] = {}
    routes: dict[str, str] = {}
    for name, route in router.collection.items():
        key = component_name(name)
        if key in routes:
            raise ConfigurationError(
                [
                    f"routes {routes[key]} and {name}: both give the catalogue channel key {key} "
                    "(allowed: route names that differ in letters, digits, _ or -)"
                ]
            )
        routes[key] = name
        # No callback: the procedures WAMP v2 clients register (app/server/wamp2/dealer.py).
        is_rpc = route.callback in rpc_callbacks or not route.callback
        verbs: tuple[str, ...] = ("subscribe", "publish")
        if is_rpc:
            verbs = ("call",) if route.callback else ("call", "register")
        auth = {verb: str(rules.rule(verb, name)) for verb in verbs}
        kinds = ("call", "result") if is_rpc else ("event",)
        channel_messages = {}
        for kind in kinds:
            message_key = f"{key}.{kind}"
            messages[message_key] = _message(route, kind, schemas, models)
            channel_messages[kind] = {"$ref": f"#/components/messages/{message_key}"}
        channels[key] = {
            "address": route.pattern,
            "description": _channel_description(name, route, is_rpc),
            "messages": channel_messages,
            "x-gos-auth": auth,
            **({"parameters": _parameters(route)} if route.compile().variables else {}),
        }
        operations.update(_operations(key, auth, is_rpc))
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": title,
            "version": version,
            "description": "The channels of the WAMP WebSocket server, one per route.",
        },
        "defaultContentType": "application/json",
        "servers": {component_name(k): dict(v) for k, v in servers.items()},
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def _channel_description(name: str, route: Route, is_rpc: bool) -> str:
    kind = f"topic {route.callback}"
    if is_rpc:
        kind = f"RPC handler {route.callback}" if route.callback else "procedures clients register"
    model = f"; payload model {route.payload.__name__}" if route.payload is not None else ""
    return f"Route {name}, handled by {kind}{model}."


def _parameters(route: Route) -> dict[str, Any]:
    """Each variable with its requirement (the regex a value must match) and its default."""
    found: dict[str, Any] = {}
    for token in route.compile().tokens:
        if not isinstance(token, VariableToken):
            continue
        requirement = route.requirements.get(token.name)
        parameter: dict[str, Any] = {
            "description": (
                f"must match {requirement}"
                if requirement is not None
                else "any text without a separator"
            )
        }
        if requirement is not None:
            parameter["x-gos-requirement"] = requirement
        if token.name in route.defaults and route.defaults[token.name] is not None:
            parameter["default"] = str(route.defaults[token.name])
        found[token.name] = parameter
    return found


def _message(
    route: Route, kind: str, schemas: dict[str, Any], models: dict[str, type[BaseModel]]
) -> dict[str, Any]:
    """The message of a channel: an event (the payload model) or an RPC call or result."""
    if kind == "event" and route.payload is not None:
        payload = _model_schema(route.payload, schemas, models)
        summary = f"A {route.payload.__name__}, as pushes and publishes deliver it."
    elif kind == "event":
        payload, summary = dict(ANY_JSON), "What a push or publish delivers."
    elif kind == "call":
        payload, summary = dict(ANY_JSON), "The parameters of a call."
    else:
        payload, summary = dict(ANY_JSON), "The result of a call."
    return {"name": kind, "summary": summary, "payload": payload}


def _model_schema(
    model: type[BaseModel], schemas: dict[str, Any], models: dict[str, type[BaseModel]]
) -> dict[str, Any]:
    """Put ``model`` and the models it nests in ``schemas``; return a reference to it.

    Raises:
        ConfigurationError: another payload model has the same class name (``models``: the
            payload model of each schema name so far); the front end types are by name.
    """
    name = model.__name__
    other = models.setdefault(name, model)
    if other is not model:
        raise ConfigurationError(
            [
                f"payload models {_qualified(other)} and {_qualified(model)}: both are named "
                f"{name} in the catalogue (allowed: one payload model per class name)"
            ]
        )
    schema = model.model_json_schema(mode="serialization", ref_template=_REF)
    for nested, definition in schema.pop("$defs", {}).items():
        schemas[nested] = definition
    schemas[name] = schema
    return {"$ref": _REF.format(model=name)}


def _qualified(model: type[BaseModel]) -> str:
    return f"{model.__module__}:{model.__qualname__}"


def _operations(key: str, auth: Mapping[str, str], is_rpc: bool) -> dict[str, Any]:
    def ref(path: str = "") -> dict[str, str]:  # a new object each time: no YAML aliases
        return {"$ref": f"#/channels/{key}{path}"}

    found: dict[str, Any] = {}
    if is_rpc:
        if auth["call"] != "nobody":
            found[f"{key}.call"] = {
                "action": "receive",
                "channel": ref(),
                "summary": f"Call it; allowed: {auth['call']}.",
                "messages": [ref("/messages/call")],
                "reply": {"channel": ref(), "messages": [ref("/messages/result")]},
                "x-gos-auth": auth["call"],
            }
        return found
    verbs = (("subscribe", "send", "Subscribe"), ("publish", "receive", "Publish to it"))
    for verb, action, what in verbs:
        if auth[verb] == "nobody":
            continue
        found[f"{key}.{verb}"] = {
            "action": action,
            "channel": ref(),
            "summary": f"{what}; allowed: {auth[verb]}.",
            "messages": [ref("/messages/event")],
            "x-gos-auth": auth[verb],
        }
    return found
