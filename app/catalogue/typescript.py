"""TypeScript declarations of the routes, for the browser client (``channels.d.ts``).

Each route becomes an entry of ``Routes``: the channels it matches as a template literal type
(``acme/chat/${string}``), its parameters, its payload (the model's JSON schema as a type;
``unknown`` without a model) and who may subscribe and publish. ``ChannelOf<"acme_chat">`` and
``PayloadOf<"acme_chat">`` are what a front end uses; the models are exported by name too.
"""

from __future__ import annotations

import json
import re
from typing import Any

from gos_web_socket.app.router import Route, Router
from gos_web_socket.app.router.route import TextToken, VariableToken

__all__ = ["typescript_declarations"]

_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
_REF_PREFIX = "#/components/schemas/"
_PRIMITIVES = {"string": "string", "integer": "number", "number": "number", "boolean": "boolean"}
HEADER = (
    "// The channels of the gos-web-socket server, written by `gos-websocket catalogue`.\n"
    "// Do not edit: run the command again when the routes or their payload models change.\n"
)


def typescript_declarations(
    router: Router, schemas: dict[str, Any], auth: dict[str, dict[str, str]]
) -> str:
    """``channels.d.ts`` for ``router``; ``schemas`` and ``auth`` come from the AsyncAPI
    document (components.schemas and each channel's ``x-gos-auth``, by route name)."""
    lines = [HEADER]
    for name, schema in schemas.items():
        described = schema.get("description") or schema.get("title") or name
        lines.append(f"/** {_comment(str(described))} */")
        lines.append(f"export type {_identifier(name)} = {_type(schema, 0)};\n")
    lines.append("/** Every route by name: its channels, parameters, payload and auth rules. */")
    lines.append("export interface Routes {")
    for name, route in router.collection.items():
        lines.append(f"  {_key(name)}: {{")
        lines.append(f"    channel: {_channels(route)};")
        lines.append(f"    params: {_params(route)};")
        payload = route.payload.__name__ if route.payload is not None else "unknown"
        lines.append(f"    payload: {_identifier(payload) if route.payload else payload};")
        for verb, rule in auth.get(name, {}).items():
            lines.append(f"    {verb}: {json.dumps(rule)};")
        lines.append("  };")
    lines.append("}\n")
    lines.append("export type RouteName = keyof Routes;")
    lines.append('export type ChannelOf<R extends RouteName> = Routes[R]["channel"];')
    lines.append('export type PayloadOf<R extends RouteName> = Routes[R]["payload"];')
    lines.append('export type ParamsOf<R extends RouteName> = Routes[R]["params"];\n')
    return "\n".join(lines)


def _channels(route: Route) -> str:
    """The channels a route matches: trailing variables with a default may be left out."""
    tokens = route.compile().tokens
    first_optional = len(tokens)
    while first_optional > 0:
        token = tokens[first_optional - 1]
        if not (isinstance(token, VariableToken) and token.name in route.defaults):
            break
        first_optional -= 1
    variants = []
    for end in range(max(first_optional, 1) if tokens else 0, len(tokens) + 1):
        text = "".join(
            _template(t.text) if isinstance(t, TextToken) else _template(t.separator) + "${string}"
            for t in tokens[:end]
        )
        variants.append(f"`{text}`")
    return " | ".join(dict.fromkeys(variants)) or "``"


def _template(text: str) -> str:
    return text.replace("\\", "\\\\").replace("`", "\\`").replace("${", "\\${")


def _params(route: Route) -> str:
    variables = route.compile().variables
    if not variables:
        return "Record<string, never>"
    fields = (f"{_key(v)}{'?' if v in route.defaults else ''}: string" for v in variables)
    return "{ " + "; ".join(fields) + " }"


def _type(schema: Any, depth: int) -> str:
    """A TypeScript type for a JSON schema (the subset pydantic writes)."""
    if not isinstance(schema, dict) or not schema:
        return "unknown"
    if "$ref" in schema:
        return _identifier(str(schema["$ref"]).removeprefix(_REF_PREFIX))
    if "const" in schema:
        return json.dumps(schema["const"])
    if "enum" in schema:
        return " | ".join(json.dumps(value) for value in schema["enum"])
    for union in ("anyOf", "oneOf"):
        if union in schema:
            return " | ".join(_type(item, depth) for item in schema[union])
    if "allOf" in schema:
        return " & ".join(_type(item, depth) for item in schema["allOf"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(_type({**schema, "type": item}, depth) for item in kind)
    if kind in _PRIMITIVES:
        return _PRIMITIVES[kind]
    if kind == "null":
        return "null"
    if kind == "array":
        items = schema.get("prefixItems")
        if isinstance(items, list):
            return "[" + ", ".join(_type(item, depth) for item in items) + "]"
        return f"Array<{_type(schema.get('items'), depth)}>"
    if kind == "object" or "properties" in schema:
        return _object(schema, depth)
    return "unknown"


def _object(schema: dict[str, Any], depth: int) -> str:
    indent = "  " * (depth + 1)
    required = set(schema.get("required", ()))
    lines = []
    for name, item in schema.get("properties", {}).items():
        if isinstance(item, dict) and item.get("description"):
            lines.append(f"{indent}/** {_comment(str(item['description']))} */")
        optional = "" if name in required else "?"
        lines.append(f"{indent}{_key(name)}{optional}: {_type(item, depth + 1)};")
    extra = schema.get("additionalProperties")
    if extra is not None and extra is not False:
        lines.append(f"{indent}[key: string]: {_type(extra if extra is not True else {}, depth)};")
    if not lines:
        return "Record<string, unknown>"
    return "{\n" + "\n".join(lines) + "\n" + "  " * depth + "}"


def _key(name: str) -> str:
    return name if _IDENTIFIER.match(name) else json.dumps(name)


def _identifier(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_$]", "_", name)
    return cleaned if _IDENTIFIER.match(cleaned) else "_" + cleaned


def _comment(text: str) -> str:
    return text.replace("*/", "*\\/").replace("\n", " ")
