"""Flask (synchronous): a route that pushes with ``push_sync``, the pusher wired in from the
pushers-only container (``gos_web_socket.push``: the web worker loads no WebSocket server).

Run: ``flask --app flask_app run`` in this directory, with ``make run`` serving, then
``curl -X POST -H 'Content-Type: application/json' -d '{"text": "hi"}'
http://127.0.0.1:5000/rooms/lobby/messages``.
"""

import atexit
from typing import Any

from dependency_injector.wiring import Provide, inject
from flask import Flask, request

from gos_web_socket.app.exceptions import RoutingError
from gos_web_socket.app.transports.pusher import Pusher
from gos_web_socket.push import create_pushers

app = Flask(__name__)


@app.post("/rooms/<room>/messages")
@inject
def post_message(room: str, pusher: Pusher = Provide["zmq"]) -> tuple[dict[str, Any], int]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("text"), str):
        return {"error": 'expected a JSON body {"text": "..."}'}, 400
    try:
        pusher.push_sync({"text": body["text"]}, "acme_topic", {"room": room})
    except RoutingError as exc:  # a room the route's requirement refuses: the client's error
        return {"error": str(exc)}, 400
    return {"pushed": True}, 201


# at start-up: settings/gos_web_socket.yaml + the GOS_WEB_SOCKET__* environment
pushers = create_pushers()
pushers.wire(modules=[__name__])
atexit.register(pushers.zmq().close_sync)
