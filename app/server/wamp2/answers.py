"""How a v2 session answers: each request at most once, ERROR by the failure's GOS code.

The roles (handshake.py, pubsub.py, rpc.py) answer through this object rather than through the
session, so none of them imports the session that holds them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from gos_web_socket.app.exceptions import ProtocolError
from gos_web_socket.app.server.session import KeywordArguments
from gos_web_socket.app.server.wamp2.codes import ERROR, RESULT, RUNTIME_ERROR, error_uri

if TYPE_CHECKING:
    from gos_web_socket.app.server.connection import WampConnection
    from gos_web_socket.app.server.session import Failure
    from gos_web_socket.app.server.wamp2.parsing import Request
    from gos_web_socket.app.server.wamp2.serializers import Serializer

logger = logging.getLogger(__name__)


def result_message(request_id: int, value: Any) -> list[Any]:
    """RESULT: a list is the arguments, a dict the one argument, ``KeywordArguments`` the
    keyword arguments."""
    message: list[Any] = [RESULT, request_id, {}]
    if isinstance(value, KeywordArguments):
        message += [[], value]
    elif isinstance(value, list):
        if value:
            message.append(value)
    else:
        message.append([value])
    return message


def payload(args: list[Any], kwargs: dict[str, Any]) -> list[Any]:
    """The optional ``Arguments, ArgumentsKw`` tail, empty ones left out as the spec asks."""
    if kwargs:
        return [args, kwargs]
    return [args] if args else []


class Answers:
    """Sends one session's v2 messages and runs its requests on the connection's worker."""

    __slots__ = ("connection", "serializer")

    def __init__(self, connection: WampConnection, serializer: Serializer) -> None:
        self.connection = connection
        self.serializer = serializer

    def send(self, message: list[Any]) -> bool:
        return self.connection.write_frame(self.serializer.frame(message))

    def enqueue(
        self, request: Request, job: Callable[[], Awaitable[None]], call: bool = False
    ) -> None:
        """Run ``job`` in order on the connection's worker (calls on their own budget); an
        unexpected exception answers the request with runtime_error."""

        async def run() -> None:
            try:
                await job()
            except ProtocolError:
                raise  # the client's fault (a spent budget): the connection closes it
            except Exception as exc:
                logger.error(
                    "connection %s: v2 request %d failed: %r",
                    self.connection.session_id,
                    request.id,
                    exc,
                )
                logger.debug("traceback", exc_info=True)
                self.error(request, RUNTIME_ERROR, str(exc))

        (self.connection.enqueue_call if call else self.connection.enqueue)(run)

    def acknowledge(self, request: Request, message: list[Any]) -> None:
        """Send the success reply of ``request``, unless it was answered."""
        if not request.answered:
            request.answered = True
            self.send(message)

    def failure(self, request: Request, failure: Failure) -> None:
        """ERROR with the URI for the failure's GOS code; its details are the ERROR's kwargs."""
        self.error(request, error_uri(failure, request.kind), failure.desc, failure.details)

    def failed(self, request: Request, failure: Failure) -> None:
        """ERROR for ``failure``, then close when the failure says so (a refusal)."""
        self.failure(request, failure)
        if failure.disconnect:
            self.connection.refuse()

    def error(
        self, request: Request, uri: str, desc: str, kwargs: dict[str, Any] | None = None
    ) -> None:
        """ERROR for ``request``, unless it was answered or wants no errors."""
        if request.answered:
            logger.debug("connection %s: v2 error not sent: %s", self.connection.session_id, desc)
            return
        request.answered = True
        if not request.answer_errors:
            return
        message: list[Any] = [ERROR, request.kind, request.id, {}, uri, [desc]]
        if kwargs:
            message.append(kwargs)
        self.send(message)
