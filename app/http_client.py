"""The toolkit's one HTTP client: a plain GET, for ``gos-websocket health`` and for the parent of
``server.workers`` scraping its workers, and a POST for the ``http`` pusher (app/sse/pusher.py)
(``app.web`` is the server side).

Every HTTP server it talks to is ours and closes after one answer, so a request is HTTP/1.0 and
the reply is read to the end: no chunking, no keep-alive, no third-party library.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping


async def get(host: str, port: int, path: str, timeout: float) -> tuple[int, bytes]:  # noqa: ASYNC109
    """One GET; the status and the body.

    Raises:
        OSError: nothing answers, it took longer than ``timeout``, or the reply is not HTTP.
    """
    return await request("GET", host, port, path, timeout)


async def request(  # noqa: PLR0913
    method: str,
    host: str,
    port: int,
    path: str,
    timeout: float,  # noqa: ASYNC109
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
) -> tuple[int, bytes]:
    """One request (the JSON publish API takes a POST with a body); the status and the body.

    Raises:
        OSError: nothing answers, it took longer than ``timeout``, or the reply is not HTTP.
    """
    lines = [f"{method} {path} HTTP/1.0", f"Host: {host}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
                reply = await reader.read()
            finally:
                writer.close()
    except TimeoutError as exc:
        raise OSError(f"http://{host}:{port}{path} did not answer in {timeout} s") from exc
    head, _, answer = reply.partition(b"\r\n\r\n")
    parts = head.split(b" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise OSError(f"http://{host}:{port}{path} did not answer with HTTP")
    return int(parts[1]), answer


def get_sync(host: str, port: int, path: str, timeout: float) -> tuple[int, bytes]:
    """``get`` for blocking callers (the CLI), which have no event loop of their own.

    Raises:
        OSError: as ``get``.
    """
    return asyncio.run(get(host, port, path, timeout))
