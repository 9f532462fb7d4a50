"""Fixtures for the presence tests: a server with a presence route, users signed in by JWT."""

from __future__ import annotations

import contextlib
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml
from dependency_injector import providers

from gos_web_socket import containers
from gos_web_socket.app.events import EventDispatcher
from gos_web_socket.app.exceptions import FirewallRejection
from gos_web_socket.app.presence import KINDS, PresenceEvent
from gos_web_socket.app.server import SecuredTopic, TopicHandler, WampServer
from gos_web_socket.app.testing import WampTestClient
from gos_web_socket.settings.presence import PresenceSettings
from tests.support.server import RUNTIME, SERVER, make_container, service, url_of

SECRET = secrets.token_urlsafe(32)

ROUTES: dict[str, Any] = {
    "chat": {
        "pattern": "acme/chat/{room}",
        "callback": "chat.topic",
        "presence": True,
    },
    "plain": {"pattern": "acme/plain/{room}", "callback": "chat.topic"},
    "guarded": {"pattern": "acme/guarded/{room}", "callback": "guarded.topic", "presence": True},
    "private": {
        "pattern": "acme/private/{room}",
        "callback": "chat.topic",
        "presence": True,
        "options": {"auth": {"subscribe": "roles:admin"}},
    },
}

AUTHENTICATION = {
    "allow_anonymous": True,
    "providers": {
        "jwt": {
            "enabled": True,
            "algorithms": ["HS256"],
            "secret": SECRET,
            "sources": {"query_parameter": "token"},
        }
    },
}


class ChatTopic(TopicHandler):
    """Counts the unsubscribe hooks it ran, by channel."""

    name = "chat.topic"

    def __init__(self) -> None:
        self.unsubscribed: list[str] = []

    async def on_unsubscribe(self, connection: Any, topic: Any, request: Any) -> None:
        self.unsubscribed.append(topic.id)


class GuardedTopic(SecuredTopic):
    """Refuses user 66 in ``secure()``."""

    name = "guarded.topic"

    async def secure(self, connection: Any, *args: Any, **kwargs: Any) -> None:
        if connection is not None and connection.user.id == "66":
            raise FirewallRejection("user 66 is barred")


def shared_presence(window: float, lease: float) -> tuple[dict[str, Any], str]:
    """A ``presence`` node shared over the broker with an events queue, under names fresh to
    this test; and that queue's name."""
    queue, exchange = f"presence-{uuid.uuid4().hex[:8]}", f"px-{uuid.uuid4().hex[:8]}"
    presence = {
        "window": window,
        "lease": lease,
        "queue": {"enabled": True, "queue": queue},
        "nodes": {"enabled": True, "exchange": exchange},
    }
    return presence, queue


def config_file(directory: Path, presence: dict[str, Any]) -> Path:
    """A gos_web_socket.yaml for a server process: the presence routes, JWT users and the
    ``presence`` node given; returns its path."""
    routing = directory / "routing.yaml"
    routing.write_text(yaml.safe_dump(ROUTES))
    tree = {
        "server": {"router": {"resources": [str(routing)]}, "demo": False},
        "authentication": AUTHENTICATION,
        "presence": presence,
    }
    config = directory / "gos_web_socket.yaml"
    config.write_text(yaml.safe_dump({"gos_web_socket": tree}))
    return config


def token(user: str, **claims: Any) -> str:
    """A valid HS256 token for ``user``."""
    body = {"sub": user, "exp": int(time.time()) + 3600, **claims}
    return jwt.encode(body, SECRET, algorithm="HS256")


class Recorder:
    """Every presence lifecycle event the server's dispatcher fired, in order."""

    def __init__(self, dispatcher: EventDispatcher) -> None:
        self.events: list[PresenceEvent] = []
        for kind in KINDS:
            dispatcher.add_listener(kind, self.events.append)

    def of(self, kind: str) -> list[tuple[str, str | None]]:
        return [(e.user_id, e.channel) for e in self.events if e.kind.rsplit(".", 1)[1] == kind]


class Presenced:
    """A running server with presence routes, its container and a client factory."""

    def __init__(self, container: containers.Container) -> None:
        self.container = container
        self.server: WampServer = service(container, SERVER)
        self.presence = service(container, "gos_web_socket.presence")
        self.recorder = Recorder(service(container, "gos_web_socket.event_dispatcher"))
        self.clients: list[WampTestClient] = []
        self.chat = ChatTopic()
        """The chat routes' handler (its unsubscribe hooks), set by ``presence_server``."""

    async def client(self, user: str | None = None, **kwargs: Any) -> WampTestClient:
        url = url_of(self.server) + ("" if user is None else f"?token={token(user)}")
        client = await WampTestClient.connect(url, **kwargs)
        self.clients.append(client)
        return client


Start = Callable[..., Awaitable[Presenced]]


@contextlib.asynccontextmanager
async def presence_server(
    presence: dict[str, Any] | None = None, **kwargs: Any
) -> AsyncIterator[Presenced]:
    """A running presence server (window 0.2 s unless ``presence`` says) on a free port;
    ``kwargs`` as ``make_container``'s; its clients are closed on exit."""
    chat = ChatTopic()
    container = make_container(
        topics=[chat, GuardedTopic()], routes=ROUTES, authentication=AUTHENTICATION, **kwargs
    )
    settings = container.settings()
    node = PresenceSettings.model_validate({"window": 0.2, **(presence or {})})
    container.settings.override(providers.Object(settings.model_copy(update={"presence": node})))
    async with service(container, RUNTIME):
        found = Presenced(container)
        found.chat = chat
        try:
            yield found
        finally:
            for client in found.clients:
                await client.close()


@pytest.fixture
async def presenced() -> AsyncIterator[Presenced]:
    """The presence server (window 0.2 s) on a free port; its clients closed at teardown."""
    async with presence_server() as found:
        yield found
