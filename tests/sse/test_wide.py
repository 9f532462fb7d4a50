"""Wide selectors (``*``, templates, URL patterns) read channels as WAMP v2 pattern
subscriptions do: no ``SecuredTopic`` channel, at most ``max_subscriptions`` channels."""

from __future__ import annotations

from typing import Any

from gos_web_socket.app.exceptions import FirewallRejection
from gos_web_socket.app.server.handlers import PushableTopic, SecuredTopic
from gos_web_socket.app.sse.relay import MercureRelay
from tests.sse.conftest import ROUTES, hub_server, publish, pusher_of, subscribed

SENTINEL = "https://example.com/sentinel"


class Guarded(SecuredTopic, PushableTopic):
    """A route whose ``secure()`` refuses every subscriber."""

    name = "guarded"

    async def secure(self, connection: Any, topic: Any, request: Any, *_: Any, **__: Any) -> None:
        if connection is not None:
            raise FirewallRejection("members only")

    async def on_push(self, topic: Any, request: Any, data: Any, provider: Any) -> None:
        topic.broadcast(data)


GUARDED = {"secret": {"pattern": "secret/{id}", "callback": "guarded"}, **ROUTES}


async def test_a_wide_selector_gets_nothing_from_a_secured_topic() -> None:
    """An anonymous ``*`` subscriber: no push of a route whose secure() refuses everyone."""
    topics = [Guarded(), MercureRelay()]
    async with (
        hub_server(routes=GUARDED, topics=topics) as server,
        subscribed(server, "topic=*") as star,
    ):
        await pusher_of(server).push("classified", "secret", {"id": "1"})
        await publish(server, [("topic", SENTINEL), ("data", "sentinel")])
        (event,) = await star.wait(1)
        assert event.data == "sentinel"


async def test_a_wide_selector_joins_max_subscriptions_channels_at_most() -> None:
    """``*`` with max_subscriptions 4 and 6 channels published: member of 4 topics at most."""
    async with (
        hub_server(limits={"max_subscriptions": 4}) as server,
        subscribed(server, "topic=*") as star,
    ):
        for n in range(6):
            await publish(server, [("topic", f"https://example.com/x/{n}"), ("data", str(n))])
        await publish(server, [("topic", "https://example.com/x/0"), ("data", "sentinel")])
        events = await star.wait(5)
        assert [e.data for e in events] == ["0", "1", "2", "3", "sentinel"]
        live = [t for c, t in server.topics.items() if c.startswith("https://example.com/x/")]
        assert sum(1 for topic in live if len(topic)) == 4
