"""The pub/sub router: channel patterns, YAML routing files, matching and generation."""

from __future__ import annotations

from app.router.collection import RouteCollection
from app.router.loader import load_routes, load_routes_from_mapping
from app.router.route import Route
from app.router.router import Router, WampRequest

__all__ = [
    "Route",
    "RouteCollection",
    "Router",
    "WampRequest",
    "load_routes",
    "load_routes_from_mapping",
]
