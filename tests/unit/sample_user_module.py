"""A user's module: services receive pushers by GOS id through dependency-injector wiring."""

from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide, inject


@inject
def notify_room(room: str, pusher: Any = Provide["gos_web_socket.zmq.pusher"]) -> Any:
    """A plain function: the pusher arrives by its service id."""
    return pusher


@inject
async def order_view(
    request: dict[str, Any], pusher: Any = Provide["gos_web_socket.amqp.pusher"]
) -> Any:
    """A web-framework-style async view."""
    return pusher
