"""The static HTTP server: files, content types, 404s, traversal, registered routes, /config.js."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gos_web_socket.app.web import HttpService, Request, Response, StaticHttpServer, start_http
from gos_web_socket.settings import Settings


async def fetch(
    port: int, raw_target: str, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    """Send one raw request (so traversal targets reach the server unnormalised)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} {raw_target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split(" ")[1]), {k.lower(): v for k, v in headers.items()}, body


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[StaticHttpServer]:
    root = tmp_path / "static"
    (root / "sub").mkdir(parents=True)
    (root / "index.html").write_text("<h1>home</h1>")
    (root / "app.js").write_text("export {};")
    (root / "sub" / "style.css").write_text("body{}")
    (tmp_path / "secret.txt").write_text("do not serve")
    http = StaticHttpServer(root)
    await http.start("127.0.0.1", 0)
    yield http
    await http.close()


async def test_root_serves_index_html(server: StaticHttpServer) -> None:
    """`/` is the demo page, as HTML."""
    status, headers, body = await fetch(server.port, "/")
    assert (status, body) == (200, b"<h1>home</h1>")
    assert headers["content-type"] == "text/html; charset=utf-8"


@pytest.mark.parametrize(
    ("target", "content_type"),
    [("/app.js", "text/javascript; charset=utf-8"), ("/sub/style.css", "text/css; charset=utf-8")],
)
async def test_files_have_their_content_type(
    server: StaticHttpServer, target: str, content_type: str
) -> None:
    """Browsers refuse ES modules served without a JavaScript type."""
    status, headers, _ = await fetch(server.port, target + "?v=1")
    assert status == 200
    assert headers["content-type"] == content_type


@pytest.mark.parametrize(
    "target", ["/missing.js", "/../secret.txt", "/%2e%2e/secret.txt", "/sub/..%2f..%2fsecret.txt"]
)
async def test_missing_and_outside_files_are_404(server: StaticHttpServer, target: str) -> None:
    """Nothing outside the static root is reachable, however the path is spelled."""
    status, _, body = await fetch(server.port, target)
    assert status == 404
    assert b"do not serve" not in body


async def test_head_has_no_body_and_post_is_405(server: StaticHttpServer) -> None:
    """Only GET and HEAD are served."""
    status, headers, body = await fetch(server.port, "/app.js", "HEAD")
    assert (status, body, headers["content-length"]) == (200, b"", "10")
    status, headers, _ = await fetch(server.port, "/app.js", "POST")
    assert (status, headers["allow"]) == (405, "GET, HEAD")


async def test_registered_routes_answer_and_failures_are_500(server: StaticHttpServer) -> None:
    """Other features add GETs (health, metrics) through register()."""

    async def health(request: Request) -> Response:
        return Response.json({"ok": True, "q": request.query.get("q")})

    def broken(request: Request) -> Response:
        raise RuntimeError("boom")

    server.register("/health", health)
    server.register("/broken", broken)
    status, headers, body = await fetch(server.port, "/health?q=1")
    assert (status, headers["content-type"], body) == (
        200,
        "application/json",
        b'{"ok": true, "q": ["1"]}',
    )
    assert (await fetch(server.port, "/broken"))[0] == 500


async def test_bad_request_line_is_400(server: StaticHttpServer) -> None:
    """A malformed request gets an answer, not a hang."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"nonsense\r\n\r\n")
    data = await reader.read()
    writer.close()
    assert data.startswith(b"HTTP/1.1 400 ")


async def test_config_js_points_at_the_websocket_server() -> None:
    """The page learns the WebSocket address from /config.js; a wildcard host means its own."""
    settings = Settings(server={"host": "0.0.0.0", "port": 1444, "http": {"port": 0}})
    service = await start_http(settings)
    try:
        status, headers, body = await fetch(service.port, "/config.js")
        assert status == 200
        assert headers["content-type"] == "text/javascript; charset=utf-8"
        assert body == b'export default {"ws": {"scheme": "ws", "host": null, "port": 1444}};\n'
    finally:
        await service.close()


async def test_disabled_http_does_not_listen() -> None:
    """`server.http.enabled: false` keeps the process WebSocket-only."""
    service = HttpService(Settings(server={"http": {"enabled": False}}))
    await service.start()
    assert not service.server.running
    await service.close()


@pytest.mark.parametrize("demo", [True, False])
async def test_demo_false_serves_the_client_and_not_the_demo_page(demo: bool) -> None:
    """Issue 30 item 10: ``server.demo: false`` answers 404 for the demo page's files and still
    serves the browser client and /config.js."""
    service = await start_http(Settings(server={"demo": demo, "http": {"port": 0}}))
    try:
        codes = {path: (await fetch(service.port, path))[0] for path in ("/", "/demo.js")}
        assert codes == ({"/": 200, "/demo.js": 200} if demo else {"/": 404, "/demo.js": 404})
        for path in ("/gos-websocket.js", "/config.js"):
            assert (await fetch(service.port, path))[0] == 200
    finally:
        await service.close()
