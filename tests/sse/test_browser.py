"""The issue's demonstration: a Symfony-shaped publisher (HS256 JWT with the ``mercure.publish``
claim) posts an update that an ``EventSource`` in Chromium receives; then a push from the AMQP
pusher reaches that EventSource, a WAMP v1 and a WAMP v2 subscriber of the same channel."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Browser

from gos_web_socket.app.events import EventDispatcher
from gos_web_socket.app.testing import V2Client, WampTestClient
from gos_web_socket.app.transports.amqp.handler import AmqpServerPushHandler
from gos_web_socket.app.transports.amqp.pusher import AmqpPusher
from tests.browser.conftest import browser, chromium  # noqa: F401  (fixtures)
from tests.sse.conftest import hub_server, publish, token
from tests.support.rabbitmq import RabbitMQNode
from tests.support.server import url_of
from tests.support.waiting import eventually

BOOK = "https://example.com/books/1"
LISTEN = """(url) => {
    window.got = [];
    window.opened = false;
    const source = new EventSource(url);
    source.onopen = () => { window.opened = true; };
    source.onmessage = (e) => window.got.push({data: e.data, id: e.lastEventId});
}"""


async def test_eventsource_in_chromium_and_wamp_clients_get_the_same_push(
    browser: Browser,  # noqa: F811
    rabbitmq: RabbitMQNode,
) -> None:
    """Symfony's POST reaches the EventSource; an AMQP push reaches it and v1 and v2 alike."""
    settings = rabbitmq.amqp_settings(push_timeout=15)
    async with hub_server() as server:
        handler = AmqpServerPushHandler(settings, server.router, EventDispatcher())
        handler.name = "amqp"
        await handler.start(server)
        page = await browser.new_page()
        try:
            await eventually(lambda: handler.is_consuming, within=20, what="the consumer")
            await page.goto(f"http://127.0.0.1:{server.port}/health")  # same origin as the hub
            await page.evaluate(LISTEN, f"/.well-known/mercure?topic={BOOK}")
            await eventually_js(page, "window.opened === true")
            symfony = token({"mercure": {"publish": [BOOK]}})
            answer = await publish(server, [("topic", BOOK), ("data", '{"title":"SF"}')], symfony)
            assert answer.status_code == 200
            await eventually_js(page, "window.got.length === 1")
            got: list[dict[str, Any]] = await page.evaluate("window.got")
            assert got == [{"data": '{"title":"SF"}', "id": answer.text}]

            v1 = await WampTestClient.connect(url_of(server))
            v2 = await V2Client.join(url_of(server))
            v1.subscribe(BOOK)
            await v2.subscribe(BOOK)
            await eventually(lambda: len(server.topics[BOOK]) == 3)
            async with AmqpPusher(settings, server.router) as pusher:
                await pusher.push({"title": "AMQP"}, "books", {"id": "1"})
            assert await v1.next_event(BOOK, timeout=20) == {"title": "AMQP"}
            assert await v2.next_event(BOOK, timeout=20) == {"title": "AMQP"}
            await eventually_js(page, "window.got.length === 2", timeout=20)
            got = await page.evaluate("window.got")
            assert got[1]["data"] == '{"title":"AMQP"}'
            await v1.close()
            await v2.leave()
        finally:
            await page.close()
            await handler.close()


async def eventually_js(page: Any, condition: str, timeout: float = 10.0) -> None:  # noqa: ASYNC109
    await page.wait_for_function(condition, timeout=timeout * 1000)
