"""The hub behind a real nginx with deploy/nginx.conf: the stream's head arrives at once,
updates arrive as published (no buffering), publishing passes through too."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.sse.conftest import HUB, PUBLISHER, SseReader, hub_server
from tests.support.nginx import Nginx

pytestmark = pytest.mark.nginx
BOOK = "https://example.com/books/1"


@contextlib.asynccontextmanager
async def reading(url: str) -> AsyncIterator[SseReader]:
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None)) as client,
        client.stream("GET", url, params={"topic": BOOK}) as response,
    ):
        reader = SseReader(response)
        task = asyncio.create_task(reader.read())
        try:
            await reader.wait_comments(1)
            yield reader
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_sse_and_publish_through_nginx() -> None:
    """Subscribe and publish through nginx: the head and each update come through at once."""
    async with hub_server({"heartbeat": 0.3}) as server:
        nginx = await asyncio.to_thread(Nginx(server.port).start)
        try:
            base = f"http://127.0.0.1:{nginx.http_port}{HUB}"
            async with reading(base) as reader, httpx.AsyncClient(timeout=10.0) as client:
                assert reader.response.headers["content-type"] == "text/event-stream"
                for n in range(3):
                    answer = await client.post(
                        base,
                        content=f"topic={BOOK}&data=d{n}",
                        headers={
                            "Authorization": f"Bearer {PUBLISHER}",
                            "Content-Type": "application/x-www-form-urlencoded",
                        },
                    )
                    assert answer.status_code == 200, answer.text
                    # each update arrives before the next is published: nothing is buffered
                    assert (await reader.wait(n + 1))[n].data == f"d{n}"
                await reader.wait_comments(3)  # heartbeats pass too
        finally:
            await asyncio.to_thread(nginx.stop)
