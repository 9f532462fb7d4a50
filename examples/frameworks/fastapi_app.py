"""FastAPI (async): the pusher opened and closed by the lifespan, a route that pushes.

Run: ``uvicorn fastapi_app:app`` in this directory, with ``make run`` serving, then
``curl -X POST -H 'Content-Type: application/json' -d '{"text": "hi"}'
http://127.0.0.1:8000/rooms/lobby/messages``. Plain Starlette: starlette_app.py.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel

from gos_web_socket import containers
from gos_web_socket.app.exceptions import RoutingError
from gos_web_socket.app.transports.pusher import Pusher


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    container = containers.create_container()  # settings + GOS_WEB_SOCKET__* environment
    async with containers.get_service(container, "gos_web_socket.zmq.pusher") as pusher:
        yield {"pusher": pusher}  # request.state.pusher until shutdown, then closed


app = FastAPI(lifespan=lifespan)


def get_pusher(request: Request) -> Pusher:
    pusher: Pusher = request.state.pusher
    return pusher


class Message(BaseModel):
    text: str


@app.post("/rooms/{room}/messages", status_code=201)
async def post_message(
    room: str, message: Message, pusher: Annotated[Pusher, Depends(get_pusher)]
) -> dict[str, bool]:
    try:
        await pusher.push(message.model_dump(), "acme_topic", {"room": room})
    except RoutingError as exc:  # a room the route's requirement refuses: the client's error
        raise HTTPException(400, str(exc)) from None
    return {"pushed": True}
