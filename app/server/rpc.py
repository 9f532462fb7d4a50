"""The base class users write RPC handlers with, and how a route's ``method`` finds a method."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gos_web_socket.app.router import WampRequest
    from gos_web_socket.app.server.connection import WampConnection

RpcMethod = Callable[["WampConnection", "WampRequest", Any], Awaitable[Any]]

_UPPER = re.compile(r"(?<!^)(?=[A-Z])")


def camelize(name: str) -> str:
    """GOS's spelling of a route's method: ``add_func`` becomes ``addFunc``."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def snakify(name: str) -> str:
    """The Python spelling: ``addFunc`` becomes ``add_func``."""
    return _UPPER.sub("_", name).lower()


class RpcHandler:
    """Base of user RPC handlers; ``name`` must equal the route callback.

    A route like ``acme/rpc/{method}`` calls ``await handler.<method>(connection, request,
    params)``. The method may be spelled as GOS camel-cases it (``addFunc``) or in
    snake_case (``add_func``). Its result is the call's answer (v1 CALLRESULT, v2 RESULT; a
    ``KeywordArguments`` dict is v2's ``ArgumentsKw``); ``None`` or ``False`` answer the error
    "RPC Error"; raise ``RpcError(message, code)`` for a specific error.
    """

    name: str = ""

    def find_method(self, method: str) -> RpcMethod | None:
        """The public coroutine method of this subclass for ``method``, or None.

        Only names defined below ``RpcHandler`` and not starting with ``_`` are callable,
        so a client cannot reach ``find_method``, ``__init__`` and the like.
        """
        for candidate in dict.fromkeys((method, camelize(method), snakify(method))):
            if not candidate or candidate.startswith("_") or hasattr(RpcHandler, candidate):
                continue
            found = getattr(self, candidate, None)
            if callable(found):
                return found  # type: ignore[no-any-return]
        return None
