"""Pushers only: what a web worker (Flask, Django, Celery) needs to push, and nothing of the
server, the authentication stack, the workers or autobahn.

    from gos_web_socket.push import create_pushers

    pushers = create_pushers()  # settings/gos_web_socket.yaml + the GOS_WEB_SOCKET__* environment
    pusher = pushers.registry()["zmq"]  # the enabled ones; or pushers.zmq()
    pusher.push_sync({"text": "hi"}, "acme_topic", {"room": "lobby"})
    pusher.close_sync()  # at exit

``Pushers`` is a container with the ids of a pusher below ``gos_web_socket`` (``zmq``, ``amqp``,
``wamp``, ``registry``, ``router``, ``event_dispatcher``), so ``Provide["zmq"]`` works in wired
modules and ``pushers.zmq.override(...)`` swaps one in tests. ``containers.py`` builds its
pushers with the same factories: a pusher is made one way whichever container holds it.
Each transport module is imported when its pusher is first built (the WAMP one needs autobahn).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from dependency_injector import containers, providers

from gos_web_socket.app.events import EventDispatcher, Listener, register_listeners
from gos_web_socket.app.exceptions import ConfigurationError
from gos_web_socket.app.registry import PusherRegistry, Registry
from gos_web_socket.app.router import load_router
from gos_web_socket.settings import PushersSettings, ServerSettings, load_settings
from gos_web_socket.settings.mercure import HttpPusherSettings

if TYPE_CHECKING:
    from gos_web_socket.app.transports.pusher import Pusher

R = TypeVar("R", bound=Registry[Any])

BUILTIN_TRANSPORTS = ("amqp", "wamp", "zmq")
NODE_REQUIRED = ("http",)
"""Pushers that are on only when their node is written (``pushers.http``, app/sse/pusher.py)."""


build_router = load_router
"""Every routing file, in order, in one router (the name ``containers`` re-exports)."""


def build_dispatcher(listeners: Iterable[tuple[str, Listener, int]]) -> EventDispatcher:
    return register_listeners(EventDispatcher(), listeners)


def enabled_names(
    names: Iterable[str], pushers: PushersSettings, known: Iterable[str] = ()
) -> list[str]:
    """Those of ``names`` whose transport is on: a built-in one when enabled (GOS removes the
    others), a custom one unless its ``pushers.<name>`` node says ``enabled: false``.

    Raises:
        ConfigurationError: a ``pushers.<name>`` node that no transport in ``names`` or
            ``known`` reads (a typo would otherwise be ignored).
    """
    names = list(names)
    claimed = sorted({*BUILTIN_TRANSPORTS, *names, *known})
    unknown = pushers.unclaimed(claimed)
    if unknown:
        allowed = ", ".join(claimed)
        raise ConfigurationError([f"unknown key pushers.{n} (allowed: {allowed})" for n in unknown])
    on = set(pushers.enabled_names())
    configured = {*BUILTIN_TRANSPORTS, *NODE_REQUIRED, *pushers.custom}
    return [name for name in names if name not in configured or name in on]


def enabled_registry(
    registry_class: type[R],
    items: Mapping[str, Any],
    pushers: PushersSettings,
    known: Iterable[str] = (),
) -> R:
    """A ``registry_class`` of the ``items`` whose transport is on (``enabled_names``).

    Raises:
        ConfigurationError: as ``enabled_names``.
    """
    on = set(enabled_names(items, pushers, known))
    return registry_class({name: item for name, item in items.items() if name in on})


def enabled_pushers(
    collection: providers.Dict, pushers: PushersSettings, known: Iterable[str] = ()
) -> PusherRegistry[Any]:
    """The enabled pushers of ``collection``, building only those (a WAMP pusher that is off
    does not load autobahn).

    Raises:
        ConfigurationError: as ``enabled_names``.
    """
    found = collection.kwargs
    return PusherRegistry({name: found[name]() for name in enabled_names(found, pushers, known)})


# The built-in pushers, each importing its transport when first built.


def amqp_pusher(**kwargs: Any) -> Pusher:
    """``AmqpPusher(**kwargs)`` (aio-pika)."""
    from gos_web_socket.app.transports.amqp.pusher import AmqpPusher

    return AmqpPusher(**kwargs)


def zmq_pusher(**kwargs: Any) -> Pusher:
    """``ZmqPusher(**kwargs)`` (pyzmq)."""
    from gos_web_socket.app.transports.zmq.pusher import ZmqPusher

    return ZmqPusher(**kwargs)


def wamp_pusher(**kwargs: Any) -> Pusher:
    """``WampPusher(**kwargs)`` (an autobahn WebSocket client)."""
    from gos_web_socket.app.transports.wamp import WampPusher

    return WampPusher(**kwargs)


def http_pusher(**kwargs: Any) -> Pusher:
    """``HttpPusher(**kwargs)``: a POST to a server's JSON publish API (app/sse/pusher.py)."""
    from gos_web_socket.app.sse.pusher import HttpPusher

    return HttpPusher(**kwargs)


def client_message_limit(server: ServerSettings) -> int:
    """Bytes of one message a WebSocket client (the WAMP pusher) may send the server."""
    return min(server.max_frame_size, server.max_message_size)


def custom_names(pushers: PushersSettings) -> list[str]:
    """Every custom ``pushers.<name>`` node: the web worker does not know the server's push
    handlers, so a node it has no pusher for is the server's business (the server checks)."""
    return list(pushers.custom)


class Pushers(containers.DeclarativeContainer):
    """The enabled pushers with their router and dispatcher, and nothing else.

    ``Pushers(settings=providers.Object(Settings(...)))`` replaces the settings; add a pusher of
    your own with ``pushers.collection.add_kwargs(acme=providers.Singleton(...))`` before the
    registry is first used; ``event_listeners.add_args(...)`` hears failed background pushes.
    """

    settings = providers.Singleton(load_settings)
    router = providers.Singleton(build_router, resources=settings.provided.server.router.resources)
    event_listeners = providers.List()
    event_dispatcher = providers.Singleton(build_dispatcher, listeners=event_listeners)

    amqp = providers.Singleton(
        amqp_pusher,
        settings=settings.provided.pushers.amqp,
        router=router,
        dispatcher=event_dispatcher.provider,
    )
    zmq = providers.Singleton(
        zmq_pusher,
        settings=settings.provided.pushers.zmq,
        router=router,
        dispatcher=event_dispatcher.provider,
        max_message_size=settings.provided.server.limits.zmq_max_message_size,
    )
    wamp = providers.Singleton(
        wamp_pusher,
        settings=settings.provided.pushers.wamp,
        router=router,
        dispatcher=event_dispatcher.provider,
        max_message_size=providers.Callable(client_message_limit, settings.provided.server),
    )
    http = providers.Singleton(
        http_pusher,
        settings=settings.provided.pushers.node.call("http", HttpPusherSettings),
        router=router,
        dispatcher=event_dispatcher.provider,
    )
    collection = providers.Dict(amqp=amqp, wamp=wamp, zmq=zmq, http=http)
    registry = providers.Singleton(
        enabled_pushers,
        collection=collection.provider,
        pushers=settings.provided.pushers,
        known=providers.Callable(custom_names, settings.provided.pushers),
    )


def create_pushers(config: Path | None = None, **overrides: Any) -> Pushers:
    """A ``Pushers`` reading ``config`` (or the default YAML) plus the environment, with
    ``overrides`` on top (as ``containers.create_container``)."""
    pushers = Pushers()
    if config is not None or overrides:
        pushers.settings.override(providers.Singleton(load_settings, config, **overrides))
    return pushers
