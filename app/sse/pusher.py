"""The ``http`` pusher: a push is a POST to a server's JSON publish API (app/sse/publish.py).

No broker in between, so nothing is kept when the server is down: ``push()`` raises
``PushFailed`` (at-most-once, like ZeroMQ, but with the server's answer: the push reached the
topic, got its position and fired ``push_success``, or failed and fired ``push_fail``).
``push_sync()`` works as for every pusher (app/transports/pusher.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from gos_web_socket.app import http_client
from gos_web_socket.app.events import EventDispatcher
from gos_web_socket.app.exceptions import PushFailed
from gos_web_socket.app.message import Message
from gos_web_socket.app.router import Router
from gos_web_socket.app.transports.pusher import Pusher
from gos_web_socket.settings.mercure import HttpPusherSettings

TRANSPORT = "http"


class HttpPusher(Pusher):
    """POSTs ``{"channel", "data"}`` with the API key; the answer's position is kept in
    ``last_answer``."""

    def __init__(
        self,
        router: Router,
        settings: HttpPusherSettings,
        dispatcher: EventDispatcher | Callable[[], EventDispatcher] | None = None,
    ) -> None:
        super().__init__(router, settings=settings, dispatcher=dispatcher)
        self.settings = settings
        self.last_answer: dict[str, Any] | None = None

    async def send(self, envelope: Message, context: dict[str, Any]) -> None:
        settings = self.settings
        body = json.dumps({"channel": envelope.topic, "data": envelope.data}).encode()
        headers = {"Content-Type": "application/json"}
        if settings.api_key is not None:
            headers["X-API-Key"] = settings.api_key.get_secret_value()
        where = f"http://{settings.host}:{settings.port}{settings.path}"
        try:
            status, answer = await http_client.request(
                "POST", settings.host, settings.port, settings.path, settings.timeout, body, headers
            )
        except OSError as exc:
            raise PushFailed(f"{where}: {exc}", transport=TRANSPORT) from exc
        if status != 200:
            reason = answer.decode("utf-8", "replace").strip()
            raise PushFailed(f"{where} answered {status}: {reason}", transport=TRANSPORT)
        self.last_answer = json.loads(answer)
