"""The gate hands plain HTTP requests to the hub: a body that arrives in pieces is waited for,
one over ``mercure.max_body`` is refused with 413; HEAD answers the stream's head only."""

from __future__ import annotations

import asyncio

from tests.sse.conftest import HUB, PUBLISHER, hub_server, subscribed


async def exchange(port: int, *parts: bytes) -> bytes:
    """Write ``parts`` with a pause between them; the whole answer (the server closes)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for part in parts:
            writer.write(part)
            await writer.drain()
            await asyncio.sleep(0.1)
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


def post_head(length: int) -> bytes:
    return (
        f"POST {HUB} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {PUBLISHER}\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


async def test_a_body_in_pieces_is_read_whole() -> None:
    """Head, then half the body, then the rest: one publish, answered with its id."""
    body = b"topic=https%3A%2F%2Fexample.com%2Fbooks%2F1&data=whole&id=piece-1"
    async with (
        hub_server() as server,
        subscribed(server, "topic=https://example.com/books/1") as reader,
    ):
        answer = await exchange(server.port, post_head(len(body)), body[:20], body[20:])
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"piece-1")
        assert [e.data for e in await reader.wait(1)] == ["whole"]


async def test_a_body_over_the_limit_is_refused_with_413() -> None:
    """``Content-Length`` over ``mercure.max_body``: 413 before the body is read."""
    async with hub_server({"max_body": 2048}) as server:
        answer = await exchange(server.port, post_head(4096))
        assert answer.startswith(b"HTTP/1.1 413")


async def test_head_answers_the_streams_head_and_ends() -> None:
    """HEAD of a subscription: the stream's headers, no body, the connection ends."""
    async with hub_server() as server:
        request = f"HEAD {HUB}?topic=acme/channel/1 HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        answer = await exchange(server.port, request)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and b"text/event-stream" in head
        assert body == b""
