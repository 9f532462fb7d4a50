"""The callers' ends of a call to a client procedure: a v2 session's frames, a v1 session's await.

A v2 caller gets RESULT (``progress: true`` for a progressive one) and ERROR frames as the
callee's answers arrive; its CALL job does not wait for them. A v1 CALL has one answer and no
options: its job awaits the final answer (``v1_call``), which maps as follows (docs/wamp2.md):
the v1 params are the INVOCATION's arguments (a list: its items; a dict: the one argument);
the YIELD's arguments are the CALLRESULT as a server RPC's would be (one dict argument: the
dict; keyword arguments only: their dict; both: the arguments with the dict appended); an
ERROR's URI is the CALLERROR's, with its arguments in the details.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from gos_web_socket.app.server.dispatch import rpc_failure
from gos_web_socket.app.server.session import Failure, KeywordArguments, Result
from gos_web_socket.app.server.wamp2.answers import payload
from gos_web_socket.app.server.wamp2.codes import CALL, ERROR, RESULT, TIMEOUT, UNAVAILABLE

if TYPE_CHECKING:
    from gos_web_socket.app.server.wamp2.answers import Answers
    from gos_web_socket.app.server.wamp2.invocations import Invocations
    from gos_web_socket.app.server.wamp2.parsing import Request
    from gos_web_socket.app.server.wamp2.registrations import Registration

_V1_CODES = {TIMEOUT: 504, UNAVAILABLE: 503}
"""The GOS code in a v1 CALLERROR's details, by the dealer's error URI (else 500)."""


class FrameReply:
    """A v2 caller's end: RESULT and ERROR frames for its CALL request, the final one once."""

    __slots__ = ("answers", "request")

    def __init__(self, answers: Answers, request: Request) -> None:
        self.answers = answers
        self.request = request

    def progress(self, args: list[Any], kwargs: dict[str, Any]) -> None:
        if not self.request.answered:
            self.answers.send([RESULT, self.request.id, {"progress": True}, *payload(args, kwargs)])

    def result(self, args: list[Any], kwargs: dict[str, Any]) -> None:
        """The final RESULT; the CALL was not a flood: its budget tokens come back."""
        if not self.request.answered:
            self.answers.connection.answered()
        self.answers.acknowledge(
            self.request, [RESULT, self.request.id, {}, *payload(args, kwargs)]
        )

    def error(self, uri: str, args: list[Any], kwargs: dict[str, Any]) -> None:
        message = [ERROR, CALL, self.request.id, {}, uri, *payload(args, kwargs)]
        self.answers.acknowledge(self.request, message)


class AwaitedReply:
    """A v1 caller's end: the final answer as a future (progressive results are not sent)."""

    __slots__ = ("future",)

    def __init__(self) -> None:
        self.future: asyncio.Future[tuple[str | None, list[Any], dict[str, Any]]]
        self.future = asyncio.get_running_loop().create_future()

    def progress(self, args: list[Any], kwargs: dict[str, Any]) -> None:
        """v1 has no progressive results: only the final answer reaches the caller."""

    def result(self, args: list[Any], kwargs: dict[str, Any]) -> None:
        if not self.future.done():
            self.future.set_result((None, args, kwargs))

    def error(self, uri: str, args: list[Any], kwargs: dict[str, Any]) -> None:
        if not self.future.done():
            self.future.set_result((uri, args, kwargs))


async def v1_call(
    invocations: Invocations, caller: str, uri: str, registration: Registration, params: Any
) -> Result | Failure:
    """A v1 CALL of a procedure a v2 client registered, answered once the callee has (or the
    call timed out, or the callee left)."""
    if isinstance(params, KeywordArguments):
        args, kwargs = [], dict(params)
    else:
        args, kwargs = (params if isinstance(params, list) else [params]), {}
    reply = AwaitedReply()
    request = invocations.new_request_id()
    details = {} if registration.terms.match == "exact" else {"procedure": uri}
    invocations.call(registration, caller, request, (args, kwargs), details, reply)
    error, args, kwargs = await reply.future
    if error is None:
        if kwargs:
            return Result([*args, kwargs] if args else KeywordArguments(kwargs))
        one_dict = len(args) == 1 and isinstance(args[0], dict)
        return Result(args[0] if one_dict else args)
    desc = args[0] if args and isinstance(args[0], str) else error
    failure = rpc_failure(error, desc, _V1_CODES.get(error, 500), params)
    failure.details.update(args=args, kwargs=kwargs)
    return failure
