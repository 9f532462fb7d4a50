"""autobahn-js (npm) against the broker: a pattern subscription, disclose_me, the meta API."""

from __future__ import annotations

import asyncio

import pytest

from gos_web_socket.app.demo import AcmeRpc, AcmeTopic
from tests.support.server import running_server
from tests.wamp2.test_node_client import next_step, node_script

pytestmark = pytest.mark.npm


@pytest.mark.parametrize("serializer", ["json", "msgpack"])
async def test_autobahn_js_pattern_subscription_and_meta(serializer: str) -> None:
    """autobahn-js subscribes with match prefix, gets a disclosed publisher's event with
    details.topic, and sees its subscription through wamp.subscription.*."""
    async with (
        running_server(topics=[AcmeTopic()], rpcs=[AcmeRpc()]) as server,
        node_script("autobahn_node_broker.js", server, serializer) as process,
    ):
        subscription = (await next_step(process, "subscribed"))["id"]
        event = await next_step(process, "event")
        assert event["args"] == [{"n": 1}]
        assert event["topic"] == "acme/channel/lobby"
        assert event["publisher"] == event["publisherSession"]
        meta = await next_step(process, "meta")
        assert meta["matched"] == [subscription]
        assert meta["listed"] == {"exact": [], "prefix": [subscription], "wildcard": []}
        assert meta["subscribers"] == [meta["watcherSession"]]
        await next_step(process, "closed")
        async with asyncio.timeout(10):
            assert await process.wait() == 0
