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


@pytest.mark.parametrize(
    "selectors",
    [
        Selectors.parse(["https://x/" + "-".join(f"{{v{n}}}" for n in range(16))]),
        Selectors.parse([], ["https://x/" + "-".join(f":v{n}" for n in range(16))]),
    ],
)
def test_variables_split_by_a_literal_match_in_linear_time(selectors: Selectors) -> None:
    """16 variables split by ``-`` against 2,000 ``a-`` that do not match: well under a second."""
    started = time.perf_counter()
    assert not selectors.matches("https://x/" + "a-" * 2000 + "/")
    assert selectors.matches("https://x/" + "-".join("ab" for _ in range(15)) + "-c-d")
    assert time.perf_counter() - started < 1.0


def test_a_selector_holds_16_variables_at_most() -> None:
    """17 variables: refused (400 on subscribe)."""
    with pytest.raises(ProtocolError):
        Selectors.parse(["https://x/" + "-".join(f"{{v{n}}}" for n in range(17))])
