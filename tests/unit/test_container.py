"""The container: every GOS id resolves, tags are provider collections, users wire and override."""

from __future__ import annotations

import pytest
from dependency_injector import providers

from gos_web_socket import containers
from gos_web_socket.app.demo import AcmeRpc, AcmeTopic
from gos_web_socket.app.events import EventDispatcher
from gos_web_socket.app.exceptions import ServiceNotFound
from gos_web_socket.app.registry import (
    PusherRegistry,
    RpcRegistry,
    ServerPushHandlerRegistry,
    TopicRegistry,
)
from gos_web_socket.app.router import Router
from gos_web_socket.app.server import WampServer
from gos_web_socket.app.server.handlers import TopicHandler
from gos_web_socket.app.server.rpc import RpcHandler
from gos_web_socket.app.transports.amqp.handler import AmqpServerPushHandler
from gos_web_socket.app.transports.amqp.pusher import AmqpPusher
from gos_web_socket.app.transports.memory import InMemoryPusher, InMemoryServerPushHandler
from gos_web_socket.app.transports.wamp import WampPusher
from gos_web_socket.app.transports.zmq.handler import ZmqServerPushHandler
from gos_web_socket.app.transports.zmq.pusher import ZmqPusher
from gos_web_socket.settings import load_settings
from gos_web_socket.testing import LinkedMemoryPusher, WampTestClient, running, url_of
from tests.unit import sample_user_module

EXPECTED = {
    "gos_web_socket.amqp.pusher": AmqpPusher,
    "gos_web_socket.wamp.pusher": WampPusher,
    "gos_web_socket.zmq.pusher": ZmqPusher,
    "gos_web_socket.amqp.server_push_handler": AmqpServerPushHandler,
    "gos_web_socket.zmq.server_push_handler": ZmqServerPushHandler,
    "gos_web_socket.pusher_registry": PusherRegistry,
    "gos_web_socket.server_push_handler.registry": ServerPushHandlerRegistry,
    "gos_web_socket.topic_registry": TopicRegistry,
    "gos_web_socket.rpc_registry": RpcRegistry,
    "gos_web_socket.router": Router,
    "gos_web_socket.event_dispatcher": EventDispatcher,
    "gos_web_socket.server": WampServer,
    # 3.x spellings
    "gos_web_socket.pusher.amqp": AmqpPusher,
    "gos_web_socket.registry.pusher": PusherRegistry,
}


@pytest.fixture
def container() -> containers.Container:
    settings = load_settings(
        pushers={
            "amqp": {"enabled": True, "login": "guest", "password": "guest"},
            "wamp": {"enabled": True},
        }
    )
    c = containers.Container(settings=providers.Object(settings))
    yield c
    c.unwire()
    c.reset_override()


def test_dependencies_are_satisfied(container: containers.Container) -> None:
    """check_dependencies() finds no undefined Dependency provider."""
    container.check_dependencies()


@pytest.mark.parametrize(("service_id", "cls"), sorted(EXPECTED.items()))
def test_every_id_resolves(container: containers.Container, service_id: str, cls: type) -> None:
    """Each id of ARCHITECTURE.md (and the 3.x aliases) resolves to its class."""
    assert isinstance(containers.get_service(container, service_id), cls)


def test_singletons_are_shared(container: containers.Container) -> None:
    """The registry holds the very pusher the id resolves to."""
    pusher = containers.get_service(container, "gos_web_socket.amqp.pusher")
    assert containers.get_service(container, "gos_web_socket.pusher_registry")["amqp"] is pusher
    router = containers.get_service(container, "gos_web_socket.router")
    assert pusher.router is router


def test_unknown_id_lists_the_known_ones(container: containers.Container) -> None:
    """A typo is answered with the ids that exist."""
    with pytest.raises(ServiceNotFound) as info:
        containers.get_service(container, "gos_web_socket.amqp.pushr")
    message = str(info.value)
    assert "gos_web_socket.amqp.pushr" in message and "gos_web_socket.amqp.pusher" in message
    assert "gos_web_socket.server_push_handler.registry" in message


def test_disabled_pushers_leave_the_registries() -> None:
    """As in GOS, a pusher that is not enabled is not registered."""
    c = containers.Container(settings=providers.Object(load_settings()))
    assert list(containers.get_service(c, "gos_web_socket.pusher_registry")) == ["zmq"]
    handlers = containers.get_service(c, "gos_web_socket.server_push_handler.registry")
    assert list(handlers) == ["zmq"]


def test_registries_hold_the_demo_topic_and_rpc(container: containers.Container) -> None:
    """Topics and RPC handlers are registered under their own names (the route callbacks)."""
    topics = containers.get_service(container, "gos_web_socket.topic_registry")
    rpcs = containers.get_service(container, "gos_web_socket.rpc_registry")
    assert isinstance(topics["acme.topic"], AcmeTopic)
    assert isinstance(rpcs["acme.rpc"], AcmeRpc)


class ShoutTopic(TopicHandler):
    name = "acme.shout"


class ClockRpc(RpcHandler):
    name = "acme.clock"


class LateTopic(TopicHandler):
    name = "acme.late"


class LateRpc(RpcHandler):
    name = "acme.late_rpc"


def test_user_adds_pusher_handler_topic_rpc_and_listener(container: containers.Container) -> None:
    """A user extends every collection from outside the toolkit, and the registries see it."""
    gws = container.gos_web_socket
    gws.pushers.add_kwargs(memory=providers.Singleton(InMemoryPusher, router=gws.router))
    gws.server_push_handler.collection.add_kwargs(
        memory=providers.Singleton(
            InMemoryServerPushHandler, router=gws.router, dispatcher=gws.event_dispatcher
        )
    )
    gws.topics.add_args(providers.Singleton(ShoutTopic))
    gws.rpcs.add_args(providers.Singleton(ClockRpc))
    seen: list[object] = []
    gws.event_listeners.add_args(providers.Object(("gos_web_socket.push_fail", seen.append, 10)))

    pushers = containers.get_service(container, "gos_web_socket.pusher_registry")
    assert isinstance(pushers["memory"], InMemoryPusher) and pushers["memory"].name == "memory"
    handlers = containers.get_service(container, "gos_web_socket.server_push_handler.registry")
    assert isinstance(handlers["memory"], InMemoryServerPushHandler)
    assert isinstance(
        containers.get_service(container, "gos_web_socket.topic_registry")["acme.shout"], ShoutTopic
    )
    assert isinstance(
        containers.get_service(container, "gos_web_socket.rpc_registry")["acme.clock"], ClockRpc
    )
    dispatcher = containers.get_service(container, "gos_web_socket.event_dispatcher")
    assert seen.append in dispatcher.listeners("gos_web_socket.push_fail")


async def test_custom_pusher_pushes_through_the_router(container: containers.Container) -> None:
    """The custom pusher gets the channel generated from the route, as built-in ones do."""
    gws = container.gos_web_socket
    gws.pushers.add_kwargs(memory=providers.Singleton(InMemoryPusher, router=gws.router))
    pusher = containers.get_service(container, "gos_web_socket.pusher_registry")["memory"]
    await pusher.push("hi", "acme_topic", {"room": "42"})
    assert pusher.sent[0][0].topic == "acme/channel/42" and pusher.sent[0][0].data == ["hi"]


async def test_wired_user_module_gets_pushers_by_id_and_overrides(
    container: containers.Container,
) -> None:
    """Provide["gos_web_socket.zmq.pusher"] injects; an override replaces it."""
    container.wire(modules=[sample_user_module])
    assert sample_user_module.notify_room("42") is containers.get_service(
        container, "gos_web_socket.zmq.pusher"
    )
    assert isinstance(await sample_user_module.order_view({}), AmqpPusher)
    fake = InMemoryPusher(containers.get_service(container, "gos_web_socket.router"))
    with container.gos_web_socket.zmq.pusher.override(fake):
        assert sample_user_module.notify_room("42") is fake
    assert isinstance(sample_user_module.notify_room("42"), ZmqPusher)


ROOT = containers.Container.gos_web_socket


class WithOwnTransport(containers.Container):
    """A user's container declaring its own pusher and push handler pair, by alias."""

    own_handler = providers.Singleton(
        InMemoryServerPushHandler, router=ROOT.router, dispatcher=ROOT.event_dispatcher
    )
    push_handlers = providers.Dict(own=own_handler)
    pushers = providers.Dict(
        own=providers.Singleton(
            LinkedMemoryPusher, router=ROOT.router, handler=own_handler.provider
        )
    )


async def test_a_subclass_declares_its_pusher_and_push_handler_as_dicts() -> None:
    """Dicts on the subclass land in the registries, bound to that instance's router and server:
    a push through the declared pusher reaches a subscriber via the declared handler."""
    async with running(WithOwnTransport) as container:
        pushers = containers.get_service(container, "gos_web_socket.pusher_registry")
        handlers = containers.get_service(container, "gos_web_socket.server_push_handler.registry")
        assert pushers["own"].router is containers.get_service(container, "gos_web_socket.router")
        assert isinstance(handlers["own"], InMemoryServerPushHandler)
        client = await WampTestClient.connect(url_of(container))
        client.subscribe("acme/channel/lobby")
        await client.call("acme/rpc/sum", 1)  # its SUBSCRIBE is handled by now
        await pushers["own"].push({"msg": "hi"}, "acme_topic", {"room": "lobby"})
        event = await client.next_event("acme/channel/lobby", timeout=5)
        await client.close()
    assert event == {"msg": "hi"}
    assert "own" not in containers.get_service(
        containers.create_container(), "gos_web_socket.pusher_registry"
    )  # the class body's providers are per subclass, not added to ours


class Realtime(containers.Container):
    """A user's container with its own topic, RPC handler, listener and transport."""

    topics = providers.List(providers.Singleton(ShoutTopic))
    rpcs = providers.List(providers.Singleton(ClockRpc))
    listeners = providers.List(providers.Object(("gos_web_socket.server_launched", print, 0)))
    pushers = WithOwnTransport.pushers
    push_handlers = WithOwnTransport.push_handlers


def test_a_user_container_built_directly_keeps_its_own_parts() -> None:
    """``Realtime()`` (no create_container) links its lists and dicts, once: a container cannot
    silently drop its class's topics."""
    container = Realtime(settings=providers.Object(load_settings()))
    gos = container.gos_web_socket
    assert "acme.shout" in gos.topic_registry() and "acme.clock" in gos.rpc_registry()
    assert "own" in gos.pusher_registry() and "own" in gos.server_push_handler.registry()
    listeners = len(gos.event_listeners.args)
    assert containers.link_own(container) is container  # a second link adds nothing
    assert len(gos.topics.args) == 1 and len(gos.event_listeners.args) == listeners


def test_what_is_added_to_the_roots_lists_after_building_is_served() -> None:
    """A pusher, push handler, topic, RPC and listener added to an instance's own lists and dicts
    after it was built reach the registries and the dispatcher (they were dropped silently)."""
    container = Realtime(settings=providers.Object(load_settings()))
    gos = container.gos_web_socket
    container.pushers.add_kwargs(memory=providers.Singleton(InMemoryPusher, router=gos.router))
    container.push_handlers.add_kwargs(
        memory=providers.Singleton(
            InMemoryServerPushHandler, router=gos.router, dispatcher=gos.event_dispatcher
        )
    )
    container.topics.add_args(providers.Singleton(LateTopic))
    container.rpcs.add_args(providers.Singleton(LateRpc))
    seen: list[object] = []
    container.listeners.add_args(providers.Object(("gos_web_socket.push_fail", seen.append, 10)))

    assert {"own", "memory"} <= set(gos.pusher_registry())
    assert {"own", "memory"} <= set(gos.server_push_handler.registry())
    assert {"acme.shout", "acme.late"} <= set(gos.topic_registry())
    assert {"acme.clock", "acme.late_rpc"} <= set(gos.rpc_registry())
    assert seen.append in gos.event_dispatcher().listeners("gos_web_socket.push_fail")
    assert "memory" not in Realtime.pushers.kwargs  # the class keeps its own


def test_the_server_receives_its_parts_from_the_container(
    container: containers.Container,
) -> None:
    """History, topic manager, broker, guard and authenticator are the container's services."""
    server = containers.get_service(container, "gos_web_socket.server")
    for service_id, attribute in (
        ("gos_web_socket.history", "history"),
        ("gos_web_socket.topic_manager", "manager"),
        ("gos_web_socket.broker", "broker"),
        ("gos_web_socket.guard", "guard"),
        ("gos_web_socket.authenticator", "authenticator"),
    ):
        assert containers.get_service(container, service_id) is getattr(server, attribute)
    assert server.broker.manager is server.manager and server.manager.history is server.history
