"""The v2 dealer role of a session: CALL answered by RESULT or ERROR.

The server's procedures are its ``RpcHandler``s (app/server/rpc.py), reached through the
``Broker`` shared with v1; clients cannot register callees yet, so REGISTER and UNREGISTER are
refused here. A dealer routing calls between clients (REGISTER, INVOCATION, YIELD) belongs in
this module.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from gos_web_socket.app.server.session import KeywordArguments, Result, call_params
from gos_web_socket.app.server.wamp2.answers import Answers, result_message
from gos_web_socket.app.server.wamp2.codes import (
    CALL,
    ERROR,
    INVALID_ARGUMENT,
    NO_SUCH_REGISTRATION,
    NOT_AUTHORIZED,
    REGISTER,
)
from gos_web_socket.app.server.wamp2.parsing import Request, a_dict, a_str, an_id, arguments, length

if TYPE_CHECKING:
    from gos_web_socket.app.server.broker import Broker


class Rpc:
    """Calls of one v2 session to the server's procedures; answers go through ``Answers``."""

    __slots__ = ("answers", "broker")

    def __init__(self, answers: Answers, broker: Broker) -> None:
        self.answers = answers
        self.broker = broker

    def call_message(self, message: list[Any]) -> None:
        length(message, 4, 6, "CALL")
        request = Request(CALL, an_id(message[1], "CALL request"))
        a_dict(message[2], "CALL options")
        uri = a_str(message[3], "CALL procedure")
        args, kwargs = arguments(message, 4, "CALL")
        self.answers.enqueue(request, partial(self.call, request, uri, args, kwargs), call=True)

    def register_message(self, message: list[Any]) -> None:
        """REGISTER or UNREGISTER: refused, the server's procedures are its RpcHandlers."""
        kind = message[0]
        length(message, 3, 4, "REGISTER/UNREGISTER")
        request_id = an_id(message[1], "request")
        error = NOT_AUTHORIZED if kind == REGISTER else NO_SUCH_REGISTRATION
        desc = "this router does not accept procedure registrations from clients"
        self.answers.send([ERROR, kind, request_id, {}, error, [desc]])

    async def call(
        self, request: Request, uri: str, args: list[Any], kwargs: dict[str, Any]
    ) -> None:
        answers = self.answers
        if args and kwargs:
            desc = "call with either arguments or keyword arguments"
            answers.error(request, INVALID_ARGUMENT, desc)
            return
        params: Any = KeywordArguments(kwargs) if kwargs else call_params(args)
        outcome = await self.broker.call(answers.connection, uri, params)
        if isinstance(outcome, Result):
            answers.acknowledge(request, result_message(request.id, outcome.value))
        else:
            answers.failed(request, outcome)
