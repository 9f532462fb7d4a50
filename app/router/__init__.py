"""The pub/sub router: channel patterns, YAML routing files, matching and generation."""

from __future__ import annotations

from gos_web_socket.app.router.collection import RouteCollection
from gos_web_socket.app.router.loader import load_router, load_routes, load_routes_from_mapping
from gos_web_socket.app.router.route import Route, RouteHistory
from gos_web_socket.app.router.router import Router, WampRequest

__all__ = [
    "Route",
    "RouteCollection",
    "RouteHistory",
    "Router",
    "WampRequest",
    "load_router",
    "load_routes",
    "load_routes_from_mapping",
]
