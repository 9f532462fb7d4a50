"""Payload models: a route may name a pydantic model (``payload: myapp.models:ChatMessage`` in
routing.yaml) that every push to it must fit.

The model is imported when the routes load, so a wrong name stops start-up with one line. A
push is checked twice: by the pusher at ``push()`` time (the caller learns at once, with the
field that is wrong) and by the server's push handler (a pusher in another language is held to
the same contract; a push that does not fit fires ``push_fail`` and reaches no topic). What
travels on is the model's JSON dump, so subscribers always receive the documented shape.
"""

from __future__ import annotations

import importlib
from typing import Any

from pydantic import BaseModel, ValidationError

from gos_web_socket.app.exceptions import ConfigurationError, InvalidPayload

__all__ = ["payload_errors", "resolve_payload", "validate_payload"]

ALLOWED = "'package.module:Class' naming a pydantic BaseModel subclass"


def resolve_payload(spec: object, where: str) -> type[BaseModel]:
    """The model ``spec`` names (or ``spec`` itself, when it is already a model class).

    Raises:
        ConfigurationError: one line naming ``where``'s payload key, the value and what is allowed.
    """
    if isinstance(spec, type) and issubclass(spec, BaseModel):
        return spec
    module_name, sep, attribute = spec.partition(":") if isinstance(spec, str) else ("", "", "")
    if not (sep and module_name and attribute):
        raise _refused(where, spec, "not of that form")
    try:
        found: Any = importlib.import_module(module_name)
    except Exception as exc:  # the user's module may fail in any way while importing
        raise _refused(where, spec, f"cannot import {module_name} ({type(exc).__name__})") from None
    for part in attribute.split("."):
        found = getattr(found, part, None)
    if not (isinstance(found, type) and issubclass(found, BaseModel)):
        raise _refused(where, spec, f"{attribute} is {type(found).__name__}, not a BaseModel")
    return found


def _refused(where: str, spec: object, reason: str) -> ConfigurationError:
    return ConfigurationError([f"{where} payload: {spec!r}: {reason} (allowed: {ALLOWED})"])


def validate_payload(model: type[BaseModel], data: Any, route_name: str) -> Any:
    """``data`` checked against ``model``, as the JSON-ready dump subscribers will receive.

    Raises:
        InvalidPayload: names each field that does not fit and why.
    """
    if isinstance(data, model):
        return data.model_dump(mode="json", by_alias=True)
    try:
        checked = model.model_validate(data)
    except ValidationError as exc:
        raise InvalidPayload(
            f"push to {route_name}: the payload does not fit {model.__name__}: "
            + payload_errors(exc),
            route_name=route_name,
        ) from None
    return checked.model_dump(mode="json", by_alias=True)


def payload_errors(error: ValidationError) -> str:
    """Pydantic's errors as ``field: message`` pairs on one line."""
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or '(whole payload)'}: {item['msg']}"
        for item in error.errors(include_url=False)
    )
