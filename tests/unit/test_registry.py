"""Registries built from tagged services, with GOS's error messages."""

from __future__ import annotations

import pytest

from gos_web_socket.app.exceptions import NotRegistered, PusherNotFound, PushHandlerNotFound
from gos_web_socket.app.registry import PusherRegistry, ServerPushHandlerRegistry


class Named:
    name = ""


def test_add_get_has_and_list() -> None:
    """add/get/has/list work and the alias becomes the item's name."""
    item = Named()
    registry: PusherRegistry[Named] = PusherRegistry()
    registry.add("test", item)
    assert registry["test"] is item and "test" in registry and list(registry) == ["test"]
    assert item.name == "test"


def test_unknown_pusher_has_the_gos_message() -> None:
    """The miss says what GOS says and lists what is registered."""
    registry = PusherRegistry({"amqp": Named()})
    with pytest.raises(PusherNotFound) as info:
        registry["nope"]
    assert str(info.value).startswith('A pusher named "nope" has not been registered.')
    assert "amqp" in str(info.value)
    assert isinstance(info.value, KeyError) and isinstance(info.value, NotRegistered)


def test_unknown_push_handler_has_the_gos_message() -> None:
    """Same for push handlers."""
    with pytest.raises(PushHandlerNotFound, match='A push handler named "x" has not been'):
        ServerPushHandlerRegistry()["x"]
