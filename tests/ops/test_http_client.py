"""app.http_client, the one HTTP client (the CLI's health, the workers' parent's scrapes),
against small servers that answer in each way it must handle."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator

import pytest

from gos_web_socket.app.http_client import get
from gos_web_socket.app.ops import check_health


async def answer_with(reply: bytes) -> asyncio.Server:
    """A server on a free port that reads the request head, writes ``reply`` and closes."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(reply)
        await writer.drain()
        writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


def port_of(server: asyncio.Server) -> int:
    port: int = server.sockets[0].getsockname()[1]
    return port


@pytest.fixture
async def teapot() -> AsyncIterator[asyncio.Server]:
    server = await answer_with(b"HTTP/1.0 418 I'm a teapot\r\nX: y\r\n\r\nshort and stout")
    async with server:
        yield server


async def test_get_returns_the_status_and_the_body(teapot: asyncio.Server) -> None:
    assert await get("127.0.0.1", port_of(teapot), "/health", 2) == (418, b"short and stout")


async def test_a_reply_that_is_not_http_is_an_oserror() -> None:
    async with await answer_with(b"SSH-2.0-OpenSSH\r\n\r\n") as server:
        with pytest.raises(OSError, match="did not answer with HTTP"):
            await get("127.0.0.1", port_of(server), "/health", 2)


async def test_a_server_that_never_answers_is_an_oserror_after_the_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(1)  # past the client's timeout
        writer.close()

    async with await asyncio.start_server(silent, "127.0.0.1", 0) as server:
        with pytest.raises(OSError, match="did not answer in 0.2 s"):
            await get("127.0.0.1", port_of(server), "/health", 0.2)


@pytest.fixture
def served_in_a_thread() -> Iterator[dict[bytes, int]]:
    """Servers on a loop thread, for the blocking ``check_health``: reply → port."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    replies = {
        b"HTTP/1.0 503 Service Unavailable\r\n\r\n<html>down</html>": 0,
        b'HTTP/1.0 200 OK\r\n\r\n{"status": "ready"}': 0,
        b"HTTP/1.0 200 OK\r\n\r\nnot json": 0,
    }
    servers = []
    for reply in replies:
        server = asyncio.run_coroutine_threadsafe(answer_with(reply), loop).result(5)
        servers.append(server)
        replies[reply] = port_of(server)
    yield replies
    for server in servers:
        loop.call_soon_threadsafe(server.close)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def test_check_health_reads_json_and_names_an_error_page(
    served_in_a_thread: dict[bytes, int],
) -> None:
    """200 with JSON: the body; an error status without JSON: not ready, naming the status;
    a 200 without JSON: something else listens there (OSError)."""
    ports = list(served_in_a_thread.values())
    assert check_health("127.0.0.1", ports[0], 2) == (
        503,
        {"status": "not ready", "failing": ["HTTP 503"]},
    )
    assert check_health("127.0.0.1", ports[1], 2) == (200, {"status": "ready"})
    with pytest.raises(OSError, match="did not answer with JSON"):
        check_health("127.0.0.1", ports[2], 2)
