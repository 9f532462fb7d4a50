"""Starlette (async): the pusher opened and closed by the lifespan, a route that pushes.

Run: ``uvicorn starlette_app:app`` in this directory, with ``make run`` serving, then
``curl -X POST -d '{"text": "hi"}' http://127.0.0.1:8000/rooms/lobby/messages``.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gos_web_socket import containers
from gos_web_socket.app.exceptions import RoutingError


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    container = containers.create_container()  # settings + GOS_WEB_SOCKET__* environment
    async with containers.get_service(container, "gos_web_socket.zmq.pusher") as pusher:
        yield {"pusher": pusher}  # request.state.pusher until shutdown, then closed


async def post_message(request: Request) -> JSONResponse:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("text"), str):
        return JSONResponse({"error": 'expected a JSON body {"text": "..."}'}, status_code=400)
    room = request.path_params["room"]
    try:
        await request.state.pusher.push({"text": body["text"]}, "acme_topic", {"room": room})
    except RoutingError as exc:  # a room the route's requirement refuses: the client's error
        return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse({"pushed": True}, status_code=201)


app = Starlette(
    routes=[Route("/rooms/{room}/messages", post_message, methods=["POST"])], lifespan=lifespan
)
