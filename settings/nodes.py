"""What every node of the settings tree shares: the base model, the file's names, and the one
line a validation error becomes (``describe``)."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

SETTINGS_DIR = Path(__file__).resolve().parent
DEFAULT_CONFIG = SETTINGS_DIR / "gos_web_socket.yaml"
DEFAULT_ROUTING = SETTINGS_DIR / "routing.yaml"
ENV_PREFIX = "GOS_WEB_SOCKET__"
ROOT_KEY = "gos_web_socket"
BUILTIN_PUSHERS = ("amqp", "wamp", "zmq")


class Node(BaseModel):
    """A config node: unknown keys are errors, as in Symfony's config tree."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_node(cls, data: Any) -> Any:
        # `tls:` with nothing under it (children commented out) is an empty node, as in Symfony.
        return {} if data is None else data


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model class inside an annotation such as ``TlsSettings`` or ``list[X] | None``."""
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, list, dict):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def _allowed_keys(root: type[BaseModel], loc: Iterable[int | str]) -> list[str]:
    model: type[BaseModel] | None = root
    for part in loc:
        if model is None:
            return []
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        model = _model_in(field.annotation) if field is not None else None
    return list(model.model_fields) if model is not None else []


def describe(error: Any, root: type[BaseModel], prefix: tuple[str, ...] = ()) -> str:
    """One line for one pydantic error: the key path, the value, what is allowed."""
    loc = tuple(error["loc"])
    path = ".".join(str(part) for part in (*prefix, *loc)) or ROOT_KEY
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return f"unknown key {path} (allowed: {', '.join(_allowed_keys(root, loc[:-1]))})"
    if error["type"] in ("missing",):
        return f"{path}: missing; {message.lower()}"
    if error["type"] in ("model_type", "model_attributes_type", "dict_type"):
        message = "the node must be a mapping of settings"
    value = error.get("input")
    if isinstance(value, dict):  # a node-level rule: the node itself is the value
        return f"{path}: {message}"
    return f"{path}: {value!r} is not allowed: {message}"
