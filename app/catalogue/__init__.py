"""The typed channel catalogue: ``gos-websocket catalogue --out DIR`` writes an AsyncAPI 3.0
document of every route (asyncapi.json, asyncapi.yaml) and TypeScript declarations for the
browser client (channels.d.ts). See docs/catalogue.md."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from gos_web_socket.app.auth.authorization import RouteRules
from gos_web_socket.app.catalogue.asyncapi import asyncapi_document, component_name
from gos_web_socket.app.catalogue.typescript import typescript_declarations
from gos_web_socket.app.router import Router

__all__ = ["FILES", "asyncapi_document", "typescript_declarations", "write_catalogue"]

FILES = ("asyncapi.json", "asyncapi.yaml", "channels.d.ts")
"""What ``write_catalogue`` writes, in its folder."""


def write_catalogue(
    router: Router,
    out: Path,
    *,
    servers: Mapping[str, Mapping[str, Any]],
    rpc_callbacks: Collection[str] = (),
) -> list[Path]:
    """Write the three files of the catalogue into ``out`` (made if missing); return them.

    Raises:
        ConfigurationError: a route's ``options.auth`` rule is not allowed; two routes give
            one channel key, or two payload models one schema name.
    """
    document = asyncapi_document(
        router,
        RouteRules.from_router(router),
        title="gos-web-socket channels",
        version=_version(),
        servers=servers,
        rpc_callbacks=rpc_callbacks,
    )
    channels = document["channels"]
    auth = {name: channels[component_name(name)]["x-gos-auth"] for name in router.collection}
    declarations = typescript_declarations(router, document["components"]["schemas"], auth)
    out.mkdir(parents=True, exist_ok=True)
    texts = (
        json.dumps(document, indent=2) + "\n",
        yaml.safe_dump(document, sort_keys=False, allow_unicode=True),
        declarations,
    )
    written = []
    for name, text in zip(FILES, texts, strict=True):
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def _version() -> str:
    try:
        return metadata.version("gos-web-socket")
    except metadata.PackageNotFoundError:  # a checkout on sys.path, not installed
        return "0.0.0"
