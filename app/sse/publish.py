"""Publishing over HTTP: Mercure's form ``POST`` and a JSON API, on the event path of a push.

Each update is a ``Push`` (app/push.py) with provider ``mercure`` at a position of this
process's log: the route's topic handler's ``on_push`` runs, history records it, and
``push_success`` / ``push_fail`` fire as for a transport's push. A Mercure update goes to the
channel of each of its topics that a route matches, carrying its data as an ``Update`` (a
``str``: WAMP subscribers get the string). Its id is the publisher's ``id`` (remembered, so a
``Last-Event-ID`` naming it finds its position) or the position itself. Which routes an update
goes to, and whether a private one may, is checked first (targets.py).
"""

from __future__ import annotations

import logging
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, cast

from gos_web_socket.app.events import (
    PUSH_FAIL,
    PUSH_SUCCESS,
    EventDispatcher,
    PushHandlerFailEvent,
    PushHandlerSuccessEvent,
)
from gos_web_socket.app.exceptions import (
    AuthenticationFailed,
    NotAuthorized,
    NotRegistered,
)
from gos_web_socket.app.position import LOCAL, Position
from gos_web_socket.app.push import Push
from gos_web_socket.app.sse.bodies import check_key, form_fields, form_update, json_body
from gos_web_socket.app.sse.targets import check_private, update_routes
from gos_web_socket.app.sse.tokens import MercureTokens
from gos_web_socket.app.sse.wire import WIRE_KEY, Update, parse_position, position_id
from gos_web_socket.app.web import Request, Response

if TYPE_CHECKING:
    from gos_web_socket.app.router import Router
    from gos_web_socket.app.server.broker import Broker
    from gos_web_socket.app.server.memory import OutgoingBudget
    from gos_web_socket.app.server.topic import Topic
    from gos_web_socket.app.sse.workers import WorkerPublishes
    from gos_web_socket.app.transports.pusher import Pusher
    from gos_web_socket.settings.models import Settings

logger = logging.getLogger(__name__)

PROVIDER = "mercure"


class Publisher:
    """Turns publish requests into pushes (``name`` is the provider events carry)."""

    name = PROVIDER

    def __init__(
        self,
        settings: Settings,
        broker: Broker,
        dispatcher: EventDispatcher,
        outgoing: OutgoingBudget,
        pushers: Callable[[], Mapping[str, Pusher]] | None = None,
    ) -> None:
        self.settings = settings.mercure
        self._pushers = pushers
        """The pusher registry (``mercure.forward`` names one of its pushers)."""
        self.broker = broker
        self.router: Router = broker.router
        self.dispatcher = dispatcher
        self.outgoing = outgoing
        self.tokens = MercureTokens(settings.authentication, settings.mercure)
        self._ids: OrderedDict[str, Position] = OrderedDict()
        """Publisher-given ids and their positions, the last ``mercure.ids_kept``."""
        self.published = 0
        self.peers: WorkerPublishes | None = None
        """With ``server.workers``: publishes go to every worker over the parent's link
        (app/sse/workers.py); None: this process delivers them."""

    def position_of(self, event_id: str, topics: Iterable[Topic] = ()) -> Position | None:
        """The position of an event id: a publisher's id this node saw published, a
        position's, else an update of the ``topics``' histories (one another node forwarded);
        None: unknown."""
        known = self._ids.get(event_id) or parse_position(event_id)
        if known is not None:
            return known
        for topic in topics:
            for publication in topic.history or ():
                payload = publication.payload
                if isinstance(payload, Update) and payload.event_id == event_id:
                    return publication.position
        return None

    @property
    def forward_to(self) -> Pusher | None:
        """The pusher HTTP publishes go through (``mercure.forward``); None: this node."""
        name = self.settings.forward
        if name is None or self._pushers is None:
            return None
        pushers = self._pushers()
        if name not in pushers:
            known = ", ".join(pushers) or "none"
            raise NotRegistered(f"mercure.forward: no pusher {name!r} (enabled: {known})")
        return pushers[name]

    def remember(self, event_id: str, position: Position) -> None:
        self._ids[event_id] = position
        while len(self._ids) > self.settings.ids_kept:
            self._ids.popitem(last=False)

    # -- Mercure's form POST -------------------------------------------------------------------

    async def form(self, request: Request, body: bytes) -> Response:
        """Publish one update (form fields ``topic``, ``data``, ``private``, ``id``, ``type``,
        ``retry``); the body of the answer is its id.

        Raises:
            ProtocolError: a malformed request (400).
            AuthenticationFailed: no token, or one that does not verify (401).
            NotAuthorized: the token may not publish to one of the topics (403).
            ResourceNotFound: no route matches any of the topics (400).
        """
        grant = self.tokens.grant(request.headers, "publish")
        if grant is None:
            raise AuthenticationFailed("missing", "a publisher token is required")
        fields, topics = form_fields(body, self.settings.path)
        denied = [t for t in topics if grant.selectors is None or not grant.selectors.matches(t)]
        if denied:
            raise NotAuthorized(f"the token may not publish to {denied[0]}")
        update = form_update(fields, topics)
        routed = update_routes(self.router, topics)
        if update.private:
            check_private(routed, self.broker.topics.handlers)
        forward = self.forward_to
        if forward is not None:  # every node gets it from the pusher's transport
            update.event_id = update.event_id or f"urn:uuid:{uuid.uuid4()}"
            for routed_request in routed:
                route, attributes = routed_request.route_name, dict(routed_request.attributes)
                await forward.push(update.to_wire(), route, attributes)
            event_id = update.event_id
        else:
            event_id = await self.publish({"update": update.to_wire()[WIRE_KEY]}, str(update))
        return Response(200, event_id.encode(), "text/plain; charset=utf-8")

    async def publish(self, message: dict[str, Any], raw: str) -> Any:
        """Deliver a checked publish here, or on every worker (``peers``); what its request
        answers."""
        if self.peers is not None:
            return await self.peers.publish(message, raw)
        return await self.deliver(message, LOCAL.next(), raw)

    async def deliver(self, message: Mapping[str, Any], position: Position, raw: str | None) -> Any:
        """Push a checked publish at ``position``: ``{"update": fields}`` (a Mercure update,
        ``Update.to_wire``'s fields; its id, when empty, is the position's) or ``{"channel",
        "json"}`` (the JSON API); the events fire when ``raw`` is given (the worker that took
        the request). Answers the update's id, or the JSON API's answer."""
        if "channel" in message:
            routed = self.router.match(message["channel"])
            await self.push(Push(routed, message["json"], PROVIDER, position), raw)
            # the id SSE subscribers see: the position where the route keeps history, else
            # none (such a broadcast has no position; its id is per broadcast, not resumable)
            event_id = position_id(position) if routed.route.history is not None else None
            return {"channel": routed.matched, "position": position.as_dict(), "id": event_id}
        update = Update.from_wire({WIRE_KEY: message["update"]})
        assert update is not None, "the sender built it"
        given = update.event_id or None
        if given is None:
            update.event_id = position_id(position)
        else:
            self.remember(given, position)
        for routed_request in update_routes(self.router, list(update.topics)):
            await self.push(Push(routed_request, update, PROVIDER, position), raw)
        return update.event_id

    async def push(self, push: Push, raw: str | None) -> None:
        """The push's way to its topic, with ``push_success`` or ``push_fail`` (re-raised);
        without events when ``raw`` is None (another worker's publish: its worker fires them)."""
        handler = cast(Any, self)  # the events name the provider that received the push
        try:
            await self.outgoing.room()
            await self.broker.push(push)
        except Exception as exc:
            if raw is None:
                raise
            logger.warning("publish to %s failed: %s", push.channel, exc)
            event = PushHandlerFailEvent(message=raw, push_handler=handler, error=exc)
            await self.dispatcher.dispatch(PUSH_FAIL, event)
            raise
        if raw is None:
            return
        self.published += 1
        await self.dispatcher.dispatch(
            PUSH_SUCCESS, PushHandlerSuccessEvent(message=raw, push_handler=handler)
        )

    # -- the JSON API ----------------------------------------------------------------------------

    async def json_api(self, request: Request, body: bytes) -> Response:
        """``{"route": name, "parameters": {...}, "data": ...}`` or ``{"channel": ..., "data":
        ...}``: a push; answers ``{"channel", "position", "id"}``.

        Raises:
            AuthenticationFailed: a missing or wrong API key (401).
            ProtocolError: a body that is not such an object (400).
            RoutingError: no such route, or no route matches the channel (400).
        """
        check_key(request, self.settings.api_keys)
        channel, data = json_body(body, self.router)
        routed = self.router.match(channel)
        forward = self.forward_to
        if forward is not None:
            await forward.push(data, routed.route_name, dict(routed.attributes))
            return Response.json({"channel": channel, "position": None, "id": None})
        raw = body.decode("utf-8", "replace")
        answer = await self.publish({"channel": channel, "json": data}, raw)
        return Response.json(answer)
