"""Our side, built from the toolkit's own classes with benchmark settings."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from settings import AmqpSettings, ZmqSettings


def amqp_settings(url: str) -> AmqpSettings:
    parts = urlsplit(url)
    return AmqpSettings(
        enabled=True,
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5672,
        login=parts.username or "guest",
        password=parts.password or "guest",
    )


def zmq_settings(port: int) -> ZmqSettings:
    return ZmqSettings(enabled=True, host="127.0.0.1", port=port, linger=0)


def router() -> Any:
    """The demo routes (acme_topic: acme/channel/{room})."""
    from app.router import Router, load_routes
    from settings import DEFAULT_ROUTING

    return Router(load_routes(DEFAULT_ROUTING))


def make_pusher(transport: str, amqp_url: str = "", zmq_port: int = 0) -> Any:
    """Our AmqpPusher or ZmqPusher on the demo routes."""
    if transport == "amqp":
        from app.transports.amqp import AmqpPusher

        return AmqpPusher(amqp_settings(amqp_url), router())
    from app.transports.zmq import ZmqPusher

    return ZmqPusher(zmq_settings(zmq_port), router())


def make_server(transport: str, amqp_url: str = "", zmq_port: int = 0) -> Any:
    """Our WampServer with the demo topic and one push handler (AMQP or ZeroMQ).

    Settings are the defaults except the enabled transport; ``max_outgoing_buffer`` stays at its
    default (1 MiB), so the slow-reader guard runs on every write as in production.
    """
    from app.demo import AcmeRpc, AcmeTopic
    from app.events import EventDispatcher
    from app.registry import RpcRegistry, ServerPushHandlerRegistry, TopicRegistry
    from app.server import WampServer
    from settings import PushersSettings, Settings

    routes = router()
    dispatcher = EventDispatcher()
    if transport == "amqp":
        from app.transports.amqp import AmqpServerPushHandler

        amqp = amqp_settings(amqp_url)
        pushers = PushersSettings(
            amqp=amqp, zmq=zmq_settings(1).model_copy(update={"enabled": False})
        )
        handler: Any = AmqpServerPushHandler(amqp, routes, dispatcher)
    else:
        from app.transports.zmq import ZmqServerPushHandler

        zmq = zmq_settings(zmq_port)
        pushers = PushersSettings(zmq=zmq)
        handler = ZmqServerPushHandler(zmq, routes, dispatcher)
    settings = Settings(pushers=pushers)
    return WampServer(
        settings,
        routes,
        TopicRegistry({"acme.topic": AcmeTopic()}),
        RpcRegistry({"acme.rpc": AcmeRpc()}),
        dispatcher,
        ServerPushHandlerRegistry({transport: handler}),
    )
