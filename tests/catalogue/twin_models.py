"""Two payload models with the same class name in two namespaces (catalogue collisions)."""

from __future__ import annotations

from pydantic import BaseModel


class Left:
    class Message(BaseModel):
        text: str


class Right:
    class Message(BaseModel):
        count: int
