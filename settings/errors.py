"""The root of the toolkit's error tree and the settings' own error, defined below ``app`` so
that settings import no app module (``app.exceptions`` re-exports both and draws the tree)."""

from __future__ import annotations

from collections.abc import Iterable


class GosWebSocketError(Exception):
    """Root of every error the toolkit raises on purpose."""


class ConfigurationError(GosWebSocketError):
    """Settings or route files that cannot be used; ``problems`` holds one line each."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))
