"""The example topic and RPC handler behind the default routes (``settings/routing.yaml``).

The handlers load on first use: the routes import ``app.demo.models`` for their payload
models, and that must not bring the server in with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gos_web_socket.app.demo.handlers import AcmeRpc, AcmeTopic

__all__ = ["AcmeRpc", "AcmeTopic"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from gos_web_socket.app.demo import handlers

        return getattr(handlers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
