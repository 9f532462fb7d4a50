"""The composition root: every service of the toolkit under its GOS id.

An id is the provider's attribute path below the root ``Container``::

    gos_web_socket.amqp.pusher                   AmqpPusher
    gos_web_socket.amqp.server_push_handler      AmqpServerPushHandler
    gos_web_socket.zmq.pusher                    ZmqPusher
    gos_web_socket.zmq.server_push_handler       ZmqServerPushHandler
    gos_web_socket.wamp.pusher                   WampPusher
    gos_web_socket.pusher_registry               enabled pushers (tag gos_web_socket.pusher)
    gos_web_socket.server_push_handler.registry  enabled handlers (tag gos_web_socket.push_handler)
    gos_web_socket.topic_registry                topics by name (tag gos_web_socket.topic)
    gos_web_socket.rpc_registry                  RPC handlers by name (tag gos_web_socket.rpc)
    gos_web_socket.router / .event_dispatcher / .server
    gos_web_socket.history / .topic_manager / .broker / .guard / .log_reader   the server's parts
    gos_web_socket.authentication_providers      custom providers, after the built-in JWT one
    gos_web_socket.authenticator                 providers in order → connection.user (app.auth)
    gos_web_socket.connection_repository         who is connected, by topic, user, role
    gos_web_socket.presence                      who is in presence channels, online (app.presence)
    gos_web_socket.ops                               /metrics, /health, profile   (app.ops)
    gos_web_socket.runtime                           starts and stops all of it (app.lifecycle)
    gos_web_socket.worker                            the WorkerRole in a server.workers process
    gos_web_socket.worker_pool                       the parent of server.workers > 1 (app.workers)
    gos_web_socket.parent_link / .dealer             a worker's link to the parent; the dealer,
                                                     relayed through that link (wamp2/relay.py)
    gos_web_socket.node_link                         server.dealer.across_nodes (wamp2/nodes.py)

so ``Provide["gos_web_socket.amqp.pusher"]`` works in wired modules and
``container.gos_web_socket.amqp.pusher.override(...)`` swaps a service in tests.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dependency_injector import containers, providers

from gos_web_socket.app import lifecycle
from gos_web_socket.app.auth import Authenticator, ConnectionRepository
from gos_web_socket.app.auth.demo import DemoTokens, launched_listener as demo_listener
from gos_web_socket.app.demo import AcmeRpc, AcmeTopic
from gos_web_socket.app.events import (
    CLIENT_CONNECTED,
    CLIENT_DISCONNECTED,
    SERVER_LAUNCHED,
    EventDispatcher,
)
from gos_web_socket.app.exceptions import ConfigurationError, ServiceNotFound
from gos_web_socket.app.history import HistoryStore
from gos_web_socket.app.ops import OpsService, WorkerOps, launched_listener, readiness
from gos_web_socket.app.presence.base import LifecycleSink
from gos_web_socket.app.presence.cluster import PresenceCluster
from gos_web_socket.app.presence.outbox import PresenceOutbox
from gos_web_socket.app.presence.service import Presence
from gos_web_socket.app.registry import (
    PusherRegistry,
    RpcRegistry,
    ServerPushHandlerRegistry,
    TopicRegistry,
)
from gos_web_socket.app.router import Router
from gos_web_socket.app.server.broker import Broker
from gos_web_socket.app.server.dispatch import RpcDispatcher, TopicDispatcher
from gos_web_socket.app.server.guard import Guard
from gos_web_socket.app.server.live import FlushScheduler
from gos_web_socket.app.server.log_reader import LogReader
from gos_web_socket.app.server.manager import TopicManager
from gos_web_socket.app.server.memory import OutgoingBudget
from gos_web_socket.app.server.server import WampServer
from gos_web_socket.app.server.topic import start_subscription_ids
from gos_web_socket.app.server.wamp2.dealer import Dealer
from gos_web_socket.app.server.wamp2.meta_workers import MetaPeers, first_id
from gos_web_socket.app.server.wamp2.nodes import NodeLink, linked
from gos_web_socket.app.server.wamp2.relay import ParentRelay, WorkerRelay
from gos_web_socket.app.sse.hub import MercureHub
from gos_web_socket.app.sse.publish import Publisher
from gos_web_socket.app.stats import ServerStats
from gos_web_socket.app.transports.amqp.handler import AmqpServerPushHandler
from gos_web_socket.app.transports.zmq.fanout import ZmqFanout
from gos_web_socket.app.transports.zmq.handler import ZmqServerPushHandler
from gos_web_socket.app.web import HttpService
from gos_web_socket.app.worker_link import ParentLink
from gos_web_socket.app.workers import WorkerPool, WorkerRole
from gos_web_socket.push import (
    BUILTIN_TRANSPORTS as BUILTIN_TRANSPORTS,
    amqp_pusher,
    build_dispatcher,
    build_router as build_router,
    client_message_limit,
    enabled_registry,
    http_pusher,
    wamp_pusher,
    zmq_pusher,
)
from gos_web_socket.settings import (
    AmqpSettings,
    PushersSettings,
    Settings,
    WampSettings,
    ZmqSettings,
    load_settings,
)
from gos_web_socket.settings.dealer import DealerSettings
from gos_web_socket.settings.mercure import HttpPusherSettings
from gos_web_socket.settings.models import LimitsSettings

# 3.x spellings of the same services, accepted by get_service().
ALIASES = {
    "gos_web_socket.pusher.amqp": "gos_web_socket.amqp.pusher",
    "gos_web_socket.pusher.wamp": "gos_web_socket.wamp.pusher",
    "gos_web_socket.pusher.amqp.push_handler": "gos_web_socket.amqp.server_push_handler",
    "gos_web_socket.registry.pusher": "gos_web_socket.pusher_registry",
    "gos_web_socket.registry.server_push_handler": "gos_web_socket.server_push_handler.registry",
    "gos_web_socket.http.pusher": "gos_web_socket.http_pusher",
}


def collection_names(collection: providers.Dict) -> list[str]:
    """The aliases of a tag collection, without building its services (they may depend on
    the registry that asks)."""
    return list(collection.kwargs)


def zmq_fanout(worker: WorkerRole | None) -> str | None:
    """In a worker of ``server.workers``: the parent's ZeroMQ fan-out to subscribe to."""
    return None if worker is None else worker.fanout


def is_worker(worker: WorkerRole | None) -> bool:
    """Workers share the WebSocket port (SO_REUSEPORT)."""
    return worker is not None


def build_presence(
    settings: Settings,
    dispatcher: EventDispatcher,
    manager: TopicManager,
    outbox: PresenceOutbox,
    sinks: Iterable[LifecycleSink],
) -> Presence:
    """Presence, told by the dispatcher when a connection opens and closes; its lifecycle
    events go to the AMQP outbox (when ``presence.queue.enabled``) and to ``sinks``."""
    limits = settings.server.limits
    presence = Presence(settings.presence, limits, dispatcher, manager, [outbox, *sinks])
    dispatcher.add_listener(CLIENT_CONNECTED, presence.on_connected)
    dispatcher.add_listener(CLIENT_DISCONNECTED, presence.on_disconnected)
    return presence


def dealer_node(settings: DealerSettings, amqp: AmqpSettings) -> NodeLink | None:
    """With ``server.dealer.across_nodes``: this node's link to the others over RabbitMQ."""
    if not settings.across_nodes:
        return None
    if not amqp.enabled:
        problem = "server.dealer.across_nodes: true needs pushers.amqp.enabled: true (allowed:"
        raise ConfigurationError([f"{problem} false, or enable the AMQP pusher)"])
    return NodeLink(settings, amqp)


def build_dealer(
    limits: LimitsSettings,
    link: ParentLink | None,
    node: NodeLink | None = None,
    worker: WorkerRole | None = None,
) -> Dealer:
    """The dealer; relayed to the other nodes' callees over RabbitMQ (each worker is a node),
    else in a worker through the parent to the other workers' callees, where the meta API
    also asks the other workers (its ids numbered per worker)."""
    dealer = Dealer(limits)
    peers = node or link
    if peers is not None:
        relay = WorkerRelay(dealer, peers.send)
        dealer.relay = relay
        peers.attach(relay)
        if node is None:
            relay.meta = MetaPeers(peers.send)
    if worker is not None:
        dealer.registrations.start_ids(first_id(worker.index))
        start_subscription_ids(first_id(worker.index))
    return dealer


def node_settings(settings: AmqpSettings, worker: WorkerRole | None) -> AmqpSettings:
    """The push handler's AMQP settings: in stream mode each worker of ``server.workers`` is a
    node of its own (``<node_name>-w<index>``: its offset file, kept across its restarts)."""
    if worker is None or settings.queue_mode != "stream":
        return settings
    name = f"{settings.stream.state_name()}-w{worker.index}"
    stream = settings.stream.model_copy(update={"node_name": name})
    return settings.model_copy(update={"stream": stream})


def with_demo(demo_enabled: bool, demo: Iterable[Any], own: Iterable[Any]) -> list[Any]:
    """The shipped demo handlers (``server.demo``, on by default) followed by your own."""
    return [*(demo if demo_enabled else ()), *own]


class Amqp(containers.DeclarativeContainer):
    """``gos_web_socket.amqp.*``

    Pushers get the dispatcher's provider, called at their first failed background push:
    the dispatcher's listeners (``/metrics``) depend on the pushers.
    """

    settings = providers.Dependency(instance_of=AmqpSettings)
    router = providers.Dependency(instance_of=Router)
    event_dispatcher = providers.Dependency(instance_of=EventDispatcher)
    worker: providers.Object[WorkerRole | None] = providers.Object(None)

    pusher = providers.Singleton(
        amqp_pusher, settings=settings, router=router, dispatcher=event_dispatcher.provider
    )
    server_push_handler = providers.Singleton(
        AmqpServerPushHandler,
        settings=providers.Callable(node_settings, settings, worker),
        router=router,
        dispatcher=event_dispatcher,
    )


class Zmq(containers.DeclarativeContainer):
    """``gos_web_socket.zmq.*``"""

    settings = providers.Dependency(instance_of=ZmqSettings)
    router = providers.Dependency(instance_of=Router)
    event_dispatcher = providers.Dependency(instance_of=EventDispatcher)
    max_message_size = providers.Dependency(instance_of=int, default=1 << 20)
    """``server.limits.zmq_max_message_size``: the pusher refuses, the handler drops beyond it."""
    fanout: providers.Dependency[Any] = providers.Dependency(default=None)
    """A worker's ZeroMQ fan-out endpoint (``app.workers``); None: bind the PULL socket."""

    pusher = providers.Singleton(
        zmq_pusher,
        settings=settings,
        router=router,
        dispatcher=event_dispatcher.provider,
        max_message_size=max_message_size,
    )
    server_push_handler = providers.Singleton(
        ZmqServerPushHandler,
        settings=settings,
        router=router,
        dispatcher=event_dispatcher,
        max_message_size=max_message_size,
        fanout=fanout,
    )


class Wamp(containers.DeclarativeContainer):
    """``gos_web_socket.wamp.*`` (no push handler: its PUBLISH reaches topics directly)."""

    settings = providers.Dependency(instance_of=WampSettings)
    router = providers.Dependency(instance_of=Router)
    event_dispatcher = providers.Dependency(instance_of=EventDispatcher)
    max_message_size = providers.Dependency(instance_of=int, default=65536)
    """The server's limit on a client message (``client_message_limit``): refused beyond it."""

    pusher = providers.Singleton(
        wamp_pusher,
        settings=settings,
        router=router,
        dispatcher=event_dispatcher.provider,
        max_message_size=max_message_size,
    )


class PushHandlers(containers.DeclarativeContainer):
    """``gos_web_socket.server_push_handler.*``: the tag collection and its registry."""

    pushers_settings = providers.Dependency(instance_of=PushersSettings)
    known = providers.Dependency(instance_of=list)
    amqp: providers.Dependency[Any] = providers.Dependency()
    zmq: providers.Dependency[Any] = providers.Dependency()
    collection = providers.Dict(
        amqp=amqp,
        zmq=zmq,
    )
    registry = providers.Singleton(
        enabled_registry,
        ServerPushHandlerRegistry,
        items=collection,
        pushers=pushers_settings,
        known=known,
    )


class GosWebSocket(containers.DeclarativeContainer):
    """``gos_web_socket.*``"""

    __self__ = providers.Self()
    settings = providers.Dependency(instance_of=Settings)
    worker: providers.Object[WorkerRole | None] = providers.Object(None)
    """The ``WorkerRole`` when this process is one of ``server.workers`` (app.workers)."""

    # routing and events
    router = providers.Singleton(build_router, resources=settings.provided.server.router.resources)
    http = providers.Singleton(HttpService, settings=settings)
    event_listeners = providers.List(
        # The demo page and its routes start with the WebSocket server.
        providers.List(SERVER_LAUNCHED, http.provided.on_server_launched, 0),
    )
    event_dispatcher = providers.Singleton(build_dispatcher, listeners=event_listeners)

    # transports
    amqp = providers.Container(
        Amqp,
        settings=settings.provided.pushers.amqp,
        router=router,
        event_dispatcher=event_dispatcher,
        worker=worker,
    )
    zmq = providers.Container(
        Zmq,
        settings=settings.provided.pushers.zmq,
        router=router,
        event_dispatcher=event_dispatcher,
        max_message_size=settings.provided.server.limits.zmq_max_message_size,
        fanout=providers.Callable(zmq_fanout, worker),
    )
    wamp = providers.Container(
        Wamp,
        settings=settings.provided.pushers.wamp,
        router=router,
        event_dispatcher=event_dispatcher,
        max_message_size=providers.Callable(client_message_limit, settings.provided.server),
    )

    # the http pusher: POSTs to a server's JSON publish API (app/sse/pusher.py, pushers.http);
    # its id gos_web_socket.http.pusher is an alias (gos_web_socket.http is the demo page)
    http_pusher = providers.Singleton(
        http_pusher,
        router=router,
        settings=settings.provided.pushers.node.call("http", HttpPusherSettings),
        dispatcher=event_dispatcher.provider,
    )

    # collections (GOS tags) and registries
    pushers = providers.Dict(
        amqp=amqp.pusher,
        wamp=wamp.pusher,
        zmq=zmq.pusher,
        http=http_pusher,
    )
    server_push_handler = providers.Container(
        PushHandlers,
        pushers_settings=settings.provided.pushers,
        known=providers.Callable(collection_names, pushers.provider),
        amqp=amqp.server_push_handler,
        zmq=zmq.server_push_handler,
    )
    pusher_registry = providers.Singleton(
        enabled_registry,
        PusherRegistry,
        items=pushers,
        pushers=settings.provided.pushers,
        known=providers.Callable(collection_names, server_push_handler.collection.provider),
    )
    # yours: topics.add_args(...) / rpcs.add_args(...); the demo ones unless server.demo is false
    topics = providers.List()
    demo_topics = providers.List(providers.Singleton(AcmeTopic))
    topic_registry: providers.Singleton[TopicRegistry[Any]] = providers.Singleton(
        TopicRegistry.named,
        items=providers.Callable(with_demo, settings.provided.server.demo, demo_topics, topics),
    )
    rpcs = providers.List()
    demo_rpcs = providers.List(providers.Singleton(AcmeRpc))
    rpc_registry: providers.Singleton[RpcRegistry[Any]] = providers.Singleton(
        RpcRegistry.named,
        items=providers.Callable(with_demo, settings.provided.server.demo, demo_rpcs, rpcs),
    )

    # operations: /metrics and /health on server.metrics, the -m profile report
    ops = providers.Singleton(
        OpsService, settings=settings.provided.server.metrics, pushers=pusher_registry
    )
    event_listeners.add_args(providers.Callable(launched_listener, ops))

    # authentication: add a custom provider with authentication_providers.add_args(...)
    authentication_providers = providers.List()
    demo_tokens = providers.Singleton(
        DemoTokens, enabled=settings.provided.server.http.demo_tokens, pushers=pusher_registry
    )
    event_listeners.add_args(providers.Callable(demo_listener, demo_tokens, http))
    authenticator = providers.Singleton(
        Authenticator.from_settings,
        settings.provided.authentication,
        custom=demo_tokens.provided.providers.call(authentication_providers),
    )

    # server: its parts first; the log reader reaches the server through its provider (the
    # server is built after its history)
    server = providers.Singleton(
        WampServer,
        settings=settings,
        router=router,
        dispatcher=event_dispatcher,
        push_handlers=server_push_handler.registry,
        readiness=providers.Object(readiness),
        authenticator=authenticator,
        reuse_port=providers.Callable(is_worker, worker),
    )
    log_reader = providers.Singleton(
        LogReader, push_handlers=server_push_handler.registry, server=server.provider
    )
    history = providers.Singleton(
        HistoryStore.from_settings,
        router,
        settings.provided.pushers.amqp,
        log_reader.provided.origin,
        log_reader.provided.read_back,
    )
    # the end of each loop turn: topics hand over their frames, connections write (live.py)
    server_settings = settings.provided.server
    outgoing = providers.Singleton(
        OutgoingBudget,
        server_settings.max_outgoing_total,
        server_settings.max_outgoing_buffer,
        server_settings.slow_reader_timeout,
    )
    flusher = providers.Singleton(FlushScheduler, outgoing, providers.Singleton(ServerStats))
    topic_manager = providers.Singleton(TopicManager, history, flusher)
    # presence: yours with presence_sinks.add_args(...) (each gets every lifecycle event)
    presence_sinks = providers.List()
    presence_outbox = providers.Singleton(
        PresenceOutbox, settings.provided.pushers.amqp, settings.provided.presence.queue
    )
    presence = providers.Singleton(
        build_presence, settings, event_dispatcher, topic_manager, presence_outbox, presence_sinks
    )
    parent_link = providers.Singleton(ParentLink.of, worker)
    node_link = providers.Singleton(
        dealer_node, settings.provided.server.dealer, settings.provided.pushers.amqp
    )
    dealer = providers.Singleton(
        build_dealer, settings.provided.server.limits, parent_link, node_link, worker
    )
    broker = providers.Singleton(
        Broker,
        router,
        topic_manager,
        providers.Singleton(TopicDispatcher, topic_registry),
        providers.Singleton(RpcDispatcher, rpc_registry),
        authenticator,
        dealer=dealer,
        presence=presence,
    )
    guard = providers.Singleton(Guard.from_settings, settings, event_dispatcher)
    server.add_kwargs(
        history=history, manager=topic_manager, broker=broker, guard=guard, flusher=flusher
    )
    # the Mercure hub on the server's port: SSE subscribe, HTTP publish (app/sse, docs/sse.md)
    mercure_publisher = providers.Singleton(
        Publisher, settings, broker, event_dispatcher, outgoing, pusher_registry.provider
    )
    mercure = providers.Singleton(MercureHub, settings, broker, mercure_publisher)
    server.add_kwargs(http=mercure)
    connection_repository = providers.Singleton(ConnectionRepository, server)

    # lifecycle: each resource depends on the one before it, so init_resources() starts them
    # in this order and shutdown_resources() stops them in reverse (app.lifecycle)
    running_pushers = providers.Resource(
        lifecycle.open_pushers,
        pusher_registry,
        drain_within=settings.provided.server.shutdown_timeout,
    )
    ops_listener = providers.Resource(lifecycle.listening, ops, running_pushers)
    http_listener = providers.Resource(lifecycle.listening, http, ops_listener)
    outbox_running = providers.Resource(lifecycle.listening, presence_outbox, http_listener)
    presence_cluster = providers.Singleton(
        PresenceCluster, settings.provided.pushers.amqp, settings.provided.presence, presence
    )
    cluster_running = providers.Resource(lifecycle.listening, presence_cluster, outbox_running)
    presence_settling = providers.Resource(lifecycle.settling, presence, cluster_running)
    dealer_nodes = providers.Resource(linked, node_link, presence_settling)
    running_server = providers.Resource(lifecycle.serving, server, dealer_nodes)
    runtime = providers.Singleton(lifecycle.Runtime, __self__, server)

    # server.workers > 1: this process is the parent, which makes the ZeroMQ fan-out (on an ipc
    # path of its own) and the summed /metrics (reading its slots) when it starts
    worker_pool = providers.Singleton(
        WorkerPool,
        settings=settings,
        fanout=providers.Factory(
            ZmqFanout,
            settings.provided.pushers.zmq,
            max_message_size=settings.provided.server.limits.zmq_max_message_size,
        ).provider,
        ops=providers.Factory(WorkerOps, settings.provided.server.metrics).provider,
        relay=providers.Factory(ParentRelay).provider,
    )


class Container(containers.DeclarativeContainer):
    """The root. ``Container(settings=Settings(...))`` replaces the settings in tests.

    Your own server subclasses it and fills three lists and two dicts (README "Your own
    server"); a provider of ours is reached through the class, e.g. ``Container.gos_web_socket
    .router``, and is rebound to each instance's own::

        class Realtime(Container):
            topics = providers.List(providers.Singleton(ChatTopic))
            rpcs = providers.List(providers.Singleton(MathRpc))
            listeners = providers.List(providers.List(SERVER_LAUNCHED, on_launched, 0))
            pushers = providers.Dict(acme=providers.Singleton(AcmePusher, router=ROUTER))
            push_handlers = providers.Dict(acme=providers.Singleton(ServerPushHandler, ...))

    Building an instance links them below ``gos_web_socket`` (``link_own``), so a container
    made with ``Realtime()`` serves your topics as one from ``create_container`` does, and
    what you add to the instance's lists later (``container.pushers.add_kwargs(...)``, like a
    tagged service) is served as well.
    """

    def __new__(cls, **overriding_providers: Any) -> Any:
        # dependency-injector builds a DynamicContainer copy here (no __init__ runs after).
        return link_own(super().__new__(cls, **overriding_providers))

    settings = providers.Singleton(load_settings)
    topics = providers.List()
    rpcs = providers.List()
    listeners = providers.List()
    pushers = providers.Dict()
    push_handlers = providers.Dict()
    gos_web_socket = providers.Container(GosWebSocket, settings=settings)


OWN_LISTS = {"topics": "topics", "rpcs": "rpcs", "listeners": "event_listeners"}
OWN_DICTS = {"pushers": "pushers", "push_handlers": "server_push_handler.collection"}
"""The root's extension lists and dicts (by alias: tags ``gos_web_socket.pusher`` and
``gos_web_socket.push_handler``) and the ``gos_web_socket`` collections they extend."""


LINKED = "_gos_web_socket_linked"
"""Marks an instance whose own lists and dicts were linked (a second link would add them twice)."""


def link_own(container: Any) -> Any:
    """Add a (sub)class's lists and dicts to ``gos_web_socket``'s collections, once, and make
    the instance's own lists and dicts those collections.

    A subclass's redefined provider is a new object the inherited ``gos_web_socket`` never saw,
    so the link is made on the instance: ``Container.__new__`` does it, so that no instance
    silently drops its class's topics; a later call is a no-op. Afterwards
    ``container.pushers`` *is* ``container.gos_web_socket.pushers`` (and so on), so a pusher,
    handler, topic, RPC or listener added to the instance's own list later is served too; its
    contents then include ours (the built-in pushers, our listeners).
    """
    if getattr(container, LINKED, False):
        return container
    setattr(container, LINKED, True)
    for root_name, collection in own_collections(container).items():
        own = getattr(container, root_name)
        if isinstance(collection, providers.Dict):
            collection.add_kwargs(**own.kwargs)
        else:
            collection.add_args(*own.args)
        setattr(container, root_name, collection)
    return container


def own_collections(container: Any) -> dict[str, Any]:
    """The ``gos_web_socket`` collection each of OWN_LISTS and OWN_DICTS extends, by root name."""
    found: dict[str, Any] = {}
    for root_name, gos_path in {**OWN_LISTS, **OWN_DICTS}.items():
        target = container.gos_web_socket
        for part in gos_path.split("."):
            target = getattr(target, part)
        found[root_name] = target
    return found


def create_container(
    config: Path | None = None, container_class: type[Container] = Container, **overrides: Any
) -> Container:
    """A ``container_class`` (default: ours) reading ``config`` (or the default YAML) plus the
    environment."""
    container: Container = container_class()
    if config is not None or overrides:
        container.settings.override(providers.Singleton(load_settings, config, **overrides))
    return container


def load_container_class(spec: str) -> type[Container]:
    """``"mypkg.realtime:Container"`` → that class, which must subclass ``Container``.

    Raises:
        ConfigurationError: one line naming the spec and what failed.
    """
    import importlib
    import os
    import sys

    # The console script, unlike `python -m`, does not put the working directory on the path;
    # your package usually lives there.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ConfigurationError(
            [f"server.container: {spec!r} is not of the form 'package.module:Class'"]
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the user's module may fail in any way while importing
        raise ConfigurationError(
            [f"server.container: cannot import {module_name!r} ({type(exc).__name__}: {exc})"]
        ) from None
    found = getattr(module, attribute, None)
    if found is None:
        raise ConfigurationError([f"server.container: {module_name!r} has no {attribute!r}"])
    if not (isinstance(found, type) and issubclass(found, Container)):
        raise ConfigurationError(
            [f"server.container: {spec!r} is not a subclass of containers.Container"]
        )
    return found


def _walk(node: Any, prefix: str) -> Iterable[tuple[str, Any]]:
    for name, provider in node.providers.items():
        path = f"{prefix}{name}"
        if isinstance(provider, providers.Container):
            yield from _walk(provider, f"{path}.")
        elif not isinstance(provider, providers.Dependency):
            yield path, provider


def service_ids(container: Container) -> list[str]:
    """Every id ``get_service`` resolves, sub-containers included."""
    return sorted(path for path, _ in _walk(container, ""))


def get_service(container: Container, service_id: str) -> Any:
    """Resolve a GOS service id (or a 3.x alias) to its instance.

    Raises:
        ServiceNotFound: the id names no provider; the message lists the known ids.
    """
    path = ALIASES.get(service_id, service_id)
    node: Any = container
    for part in path.split("."):
        provider = node.providers.get(part) if hasattr(node, "providers") else None
        if provider is None or isinstance(provider, providers.Dependency):
            raise ServiceNotFound(service_id, service_ids(container))
        node = provider
    if isinstance(node, providers.Container):
        raise ServiceNotFound(service_id, service_ids(container))
    return node()
