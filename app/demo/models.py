"""The payload models of the demo routes (``payload:`` in settings/routing.yaml).

Kept apart from the handlers so that loading the routes (``gos-websocket routes``,
``catalogue``, every pusher) imports these models without the server.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ChatMessage"]


class ChatMessage(BaseModel):
    """One line of a chat room, pushed to ``acme/chat/{room}`` (route ``acme_chat``)."""

    model_config = ConfigDict(extra="forbid")

    author: str = Field(min_length=1, max_length=40, description="Who wrote it.")
    text: str = Field(min_length=1, max_length=2000, description="What they wrote.")
    sent_at: datetime | None = Field(default=None, description="When, if the sender knows.")
