"""The toolkit's one HTTP client: a plain GET, for ``gos-websocket health`` and for the parent of
``server.workers`` scraping its workers (``app.web`` is the server side).

Every HTTP server it talks to is ours and closes after one answer, so a request is HTTP/1.0 and
the reply is read to the end: no chunking, no keep-alive, no third-party library.
"""

from __future__ import annotations

import asyncio


async def get(host: str, port: int, path: str, timeout: float) -> tuple[int, bytes]:  # noqa: ASYNC109
    """One GET; the status and the body.

    Raises:
        OSError: nothing answers, it took longer than ``timeout``, or the reply is not HTTP.
    """
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(
                    f"GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
                )
                reply = await reader.read()
            finally:
                writer.close()
    except TimeoutError as exc:
        raise OSError(f"http://{host}:{port}{path} did not answer in {timeout} s") from exc
    head, _, body = reply.partition(b"\r\n\r\n")
    parts = head.split(b" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise OSError(f"http://{host}:{port}{path} did not answer with HTTP")
    return int(parts[1]), body


def get_sync(host: str, port: int, path: str, timeout: float) -> tuple[int, bytes]:
    """``get`` for blocking callers (the CLI), which have no event loop of their own.

    Raises:
        OSError: as ``get``.
    """
    return asyncio.run(get(host, port, path, timeout))
