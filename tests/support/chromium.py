"""Debian's Chromium under Playwright, as every browser test launches it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium keeps dialling out, and this network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium() -> Path:
    """Chromium and Playwright, or a failed test that says what to run (never a skip)."""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        pytest.fail("playwright is not installed: run make test (it installs the dev dependencies)")
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: run make test, it installs chromium")
    return CHROMIUM


async def launch(playwright: Any) -> Any:
    """A headless Debian Chromium."""
    return await playwright.chromium.launch(
        executable_path=str(require_chromium()), headless=True, args=CHROMIUM_ARGS
    )
