"""A small HTTP server beside the WebSocket server: the demo page, the browser client, extra GETs.

Standard library only, GET and HEAD only, one request per connection. Files come from
``app/static``; ``register(path, handler)`` adds routes (``/config.js`` is one, health or metrics
can be others). The server process starts it through the ``server_launched`` listener::

    http = HttpService(settings)
    dispatcher.add_listener(SERVER_LAUNCHED, http.on_server_launched)
    ...
    await http.close()
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import mimetypes
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from gos_web_socket.app.exceptions import ListenError

if TYPE_CHECKING:
    from gos_web_socket.app.events import ServerLaunchedEvent
    from gos_web_socket.settings import Settings

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
MAX_HEAD = 16_384  # bytes of request line + headers; larger requests get 431
READ_TIMEOUT = 10.0  # seconds a client may take to send its request head

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}

REASONS = {
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
}


@dataclass(frozen=True)
class Request:
    """What a route handler sees of a GET."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def text(cls, text: str, status: int = 200) -> Response:
        return cls(status, text.encode(), "text/plain; charset=utf-8")

    @classmethod
    def json(cls, value: Any, status: int = 200) -> Response:
        return cls(status, json.dumps(value).encode(), "application/json")


Handler = Callable[[Request], Response | Awaitable[Response]]


def content_type(path: Path) -> str:
    """Fixed types for what we ship (mimetypes varies across systems), mimetypes for the rest."""
    known = CONTENT_TYPES.get(path.suffix.lower())
    if known is not None:
        return known
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"


class StaticHttpServer:
    """GET of files under ``root`` plus registered routes; 404 for anything else."""

    def __init__(self, root: Path = STATIC_DIR, hidden: Iterable[str] = ()) -> None:
        self.root = root.resolve()
        self.hidden = frozenset(hidden)
        """Files under ``root`` (relative paths) answered 404, as if absent."""
        self._routes: dict[str, Handler] = {}
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def register(self, path: str, handler: Handler) -> None:
        """Answer GETs of exactly ``path`` (no query) with ``handler``; routes win over files."""
        if not path.startswith("/"):
            raise ValueError(f"route path must start with '/': {path!r}")
        self._routes[path] = handler

    @property
    def port(self) -> int:
        """The bound port (useful after ``start(port=0)``)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the HTTP server is not running")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(
        self, host: str, port: int, setting: str = "server.http", role: str = "demo page"
    ) -> None:
        """Listen on ``host:port``; ``setting`` (the config node) and ``role`` name the listener
        in its start-up line and in the error.

        Raises:
            ListenError: the address cannot be bound (taken, not local, no permission).
        """
        try:
            self._server = await asyncio.start_server(self._handle, host, port, limit=MAX_HEAD)
        except OSError as exc:
            raise ListenError(setting, host, port, exc) from exc
        logger.info("%s listener (%s) on http://%s:%d/", role, setting, host, self.port)

    async def close(self) -> None:
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close()
        for writer in list(self._writers):  # idle browser connections must not hold up the stop
            writer.close()
        await server.wait_closed()

    def file_for(self, url_path: str) -> Path | None:
        """The file a URL path names, or None when it is missing or outside ``root``."""
        relative = unquote(url_path).lstrip("/")
        if relative == "" or relative.endswith("/"):
            relative += "index.html"
        if "\x00" in relative or relative in self.hidden:
            return None
        candidate = (self.root / relative).resolve()
        if not candidate.is_relative_to(self.root) or not candidate.is_file():
            return None
        return candidate

    async def respond(self, request: Request) -> Response:
        """The response to one parsed request."""
        if request.method not in ("GET", "HEAD"):
            return Response(405, b"method not allowed\n", headers={"Allow": "GET, HEAD"})
        handler = self._routes.get(request.path)
        if handler is not None:
            result = handler(request)
            return await result if inspect.isawaitable(result) else result
        path = self.file_for(request.path)
        if path is None:
            return Response.text("not found\n", 404)
        return Response(200, path.read_bytes(), content_type(path))

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        method = "GET"
        self._writers.add(writer)
        try:
            try:
                async with asyncio.timeout(READ_TIMEOUT):
                    head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.LimitOverrunError:
                response = Response.text("request head too large\n", 431)
            except TimeoutError:
                response = Response.text("request timeout\n", 408)
            else:
                request = parse_request(head)
                if request is None:
                    response = Response.text("bad request\n", 400)
                else:
                    method = request.method
                    response = await self._safe_respond(request)
            writer.write(encode_response(response, head_only=method == "HEAD"))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away; nothing to answer
        finally:
            self._writers.discard(writer)
            writer.close()
            try:
                await writer.wait_closed()
            except ConnectionError:
                pass

    async def _safe_respond(self, request: Request) -> Response:
        try:
            return await self.respond(request)
        except Exception:
            logger.exception("HTTP handler for %s failed", request.path)
            return Response.text("internal server error\n", 500)


def parse_request(head: bytes) -> Request | None:
    """Parse a request line and headers; None when malformed."""
    try:
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ")
    except ValueError:
        return None
    if not version.startswith("HTTP/1."):
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            return None
        headers[name.strip().lower()] = value.strip()
    url = urlsplit(target)  # absolute-form targets work too
    return Request(method, url.path or "/", parse_qs(url.query), headers)


def encode_response(response: Response, head_only: bool = False) -> bytes:
    reason = REASONS.get(response.status, "Unknown")
    headers = {
        "Content-Type": response.content_type,
        "Content-Length": str(len(response.body)),
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
        "Connection": "close",
        **response.headers,
    }
    lines = [f"HTTP/1.1 {response.status} {reason}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + response.body


DEMO_FILES = (
    "index.html",
    "demo.js",
    "demo.css",
    "demo-config.js",
    "demo-private.js",
    "demo-presence.js",
)
"""The demo page's files under app/static (the rest is the browser client)."""


def websocket_config(scheme: str, host: str, port: int) -> dict[str, Any]:
    """Where the page finds the WebSocket server; a wildcard host means "the page's own host"."""
    public_host = None if host in ("0.0.0.0", "::", "") else host
    return {"ws": {"scheme": scheme, "host": public_host, "port": port}}


class HttpService:
    """The HTTP side of the server process: started once the WebSocket server listens.

    ``/config.js`` tells the demo page where the WebSocket server is: the settings, or the
    running server's own port when started by ``on_server_launched``.
    """

    def __init__(self, settings: Settings, root: Path = STATIC_DIR) -> None:
        self.settings = settings
        # server.demo: false serves the browser client and /config.js, not the demo page.
        self.server = StaticHttpServer(root, () if settings.server.demo else DEMO_FILES)
        self.ws_port = settings.server.port
        self.server.register("/config.js", self._config_js)

    def register(self, path: str, handler: Handler) -> None:
        self.server.register(path, handler)

    @property
    def port(self) -> int:
        return self.server.port

    async def start(self) -> None:
        """Listen on ``server.http`` unless disabled; calling it again while running is a no-op."""
        http = self.settings.server.http
        if not http.enabled or self.server.running:
            return
        await self.server.start(http.host, http.port)

    async def on_server_launched(self, event: ServerLaunchedEvent) -> None:
        """The ``gos_web_socket.server_launched`` listener: point the page at that server."""
        port = getattr(event.server, "port", None)
        if isinstance(port, int) and port > 0:
            self.ws_port = port

    async def close(self) -> None:
        await self.server.close()

    def _config_js(self, request: Request) -> Response:
        server = self.settings.server
        scheme = "wss" if server.tls.enabled else "ws"
        config = websocket_config(scheme, server.host, self.ws_port)
        body = f"export default {json.dumps(config)};\n"
        return Response(200, body.encode(), CONTENT_TYPES[".js"])


async def start_http(settings: Settings, root: Path = STATIC_DIR) -> HttpService:
    """Start the HTTP service now (tests, custom launchers); ``await service.close()`` stops it."""
    service = HttpService(settings, root)
    await service.start()
    return service
