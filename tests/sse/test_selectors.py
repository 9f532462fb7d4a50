"""Topic selectors: what each form matches, and the shapes refused because matching them could
take unbounded time."""

from __future__ import annotations

import time

import pytest

from gos_web_socket.app.exceptions import ProtocolError
from gos_web_socket.app.sse.selectors import Selectors

BOOK = "https://example.com/books/1"


@pytest.mark.parametrize(
    ("topics", "patterns", "topic", "matches"),
    [
        (["*"], [], "anything at all", True),
        ([BOOK], [], BOOK, True),
        ([BOOK], [], BOOK + "/", False),
        (["https://example.com/books/{id}"], [], BOOK, True),
        (["https://example.com/books/{id}"], [], BOOK + "/reviews", False),
        (["https://example.com/{+path}"], [], BOOK + "/reviews?x=1", True),
        ([], ["https://example.com/books/:id"], BOOK, True),
        ([], ["https://example.com/books/:id"], "https://example.com/authors/1", False),
        ([], ["https://example.com/*"], BOOK, True),
    ],
)
def test_what_a_selector_matches(
    topics: list[str], patterns: list[str], topic: str, matches: bool
) -> None:
    """Exact, ``*``, URI templates (``{id}`` a segment, ``{+path}`` anything), URL patterns."""
    assert Selectors.parse(topics, patterns).matches(topic) is matches


@pytest.mark.parametrize(
    ("topics", "patterns"),
    [
        (["https://example.com/{+a}/x/{+b}"], []),
        (["https://example.com/{a}{b}"], []),
        ([], ["https://example.com/*/x/*"]),
        ([BOOK] * 101, []),
        (["x" * 4097], []),
    ],
)
def test_unbounded_or_oversized_selectors_are_refused(
    topics: list[str], patterns: list[str]
) -> None:
    """Two match-anything parts, two variables side by side, over 100 selectors or over 4096
    bytes: refused (400 on subscribe)."""
    with pytest.raises(ProtocolError):
        Selectors.parse(topics, patterns)


def test_a_long_topic_is_matched_quickly() -> None:
    """A 4 KiB topic against an allowed template: well under a second (quadratic at worst)."""
    selectors = Selectors.parse(["https://example.com/{id}-x/{+rest}"])
    topic = "https://example.com/" + "a-" * 2000
    started = time.perf_counter()
    assert not selectors.matches(topic)
    assert time.perf_counter() - started < 1.0
