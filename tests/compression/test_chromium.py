"""Chromium negotiates permessage-deflate with our server and decodes the compressed EVENTs."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import async_playwright

from gos_web_socket.app.push import Push
from gos_web_socket.app.server.compression import DeflateFormat
from tests.compression.test_deflate import CHANNEL, PAYLOAD, ROUTES, NewsTopic
from tests.support.chromium import launch, require_chromium
from tests.support.server import running_server
from tests.support.waiting import eventually

SUBSCRIBE_AND_WAIT = """
(args) => new Promise((resolve, reject) => {
  const [url, channel, count] = args;
  const events = [];
  const ws = new WebSocket(url, ["wamp"]);
  ws.onmessage = (e) => {
    const message = JSON.parse(e.data);
    if (message[0] === 0) ws.send(JSON.stringify([5, channel]));
    if (message[0] === 8) events.push(message);
    if (events.length === count) { resolve({extensions: ws.extensions, events}); ws.close(); }
  };
  ws.onerror = () => reject(new Error("WebSocket error"));
  setTimeout(() => reject(new Error("no events within 8 s")), 8000);
})
"""


@pytest.mark.browser
async def test_chromium_decodes_compressed_events() -> None:
    """Chromium's offer is accepted with server_no_context_takeover; three compressed EVENTs
    in a row (each a deflate stream of its own) decode to the pushes."""
    require_chromium()
    async with running_server(topics=[NewsTopic()], routes=ROUTES, compression=True) as server:
        async with async_playwright() as playwright:
            browser = await launch(playwright)
            try:
                page = await browser.new_page()
                url = f"ws://127.0.0.1:{server.port}/"
                received = asyncio.ensure_future(
                    page.evaluate(SUBSCRIBE_AND_WAIT, [url, CHANNEL, 3])
                )
                await eventually(lambda: CHANNEL in server.topics, what="Chromium subscribed")
                formats = server.topics[CHANNEL].wire_formats
                assert any(isinstance(f, DeflateFormat) for f in formats)
                for n in range(3):
                    await server.on_push(
                        Push(server.router.match(CHANNEL), {**PAYLOAD, "n": n}, "t")
                    )
                result = await asyncio.wait_for(received, 10)
            finally:
                await browser.close()
    assert "permessage-deflate" in result["extensions"]
    assert "server_no_context_takeover" in result["extensions"]
    assert result["events"] == [[8, CHANNEL, {**PAYLOAD, "n": n}] for n in range(3)]
