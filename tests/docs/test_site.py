"""The documentation site builds strictly, and what the docs state about the product holds."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
HISTORY = {"bench.md"}
"""Pages kept as the project's record (listed under "Project history" in mkdocs.yml)."""
USER_PAGES = [ROOT / "README.md"] + sorted(p for p in DOCS.glob("*.md") if p.name not in HISTORY)


def test_the_site_builds_with_no_warning_and_no_broken_link(tmp_path: Path) -> None:
    """`mkdocs build --strict` (what `make docs` runs): any warning, a broken link or anchor,
    a page left out of the nav, or a docstring the API reference cannot render fails it."""
    mkdocs = Path(sys.executable).parent / "mkdocs"
    done = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    for name in ("push_sync", "PushableTopic", "RpcHandler", "create_container"):
        assert name in api, f"{name} missing from the API reference"


def test_the_readme_is_a_product_page_under_1500_words() -> None:
    """README.md stays short: the rest lives in the site."""
    words = len((ROOT / "README.md").read_text().split())
    assert words < 1500, words


def test_user_docs_hold_no_issue_history() -> None:
    """ "Issue 18", "item 8" and the like belong in CHANGELOG.md, not in the pages users read."""
    history = re.compile(r"\b(issues? \d+|items? \d+)\b", re.IGNORECASE)
    found = [
        f"{page.relative_to(ROOT)}: {match[0]}"
        for page in USER_PAGES
        for match in history.finditer(page.read_text())
    ]
    assert found == []


def test_the_browser_page_push_goes_to_the_room_the_page_joins() -> None:
    """Issue 30 item 1: docs/browser.md's push command names the demo page's default room."""
    html = (ROOT / "app" / "static" / "index.html").read_text()
    default = re.search(r'<input id="room"[^>]*value="([^"]+)"', html)
    assert default is not None
    pushes = re.findall(r"push acme_topic -p room=(\S+)", (DOCS / "browser.md").read_text())
    assert pushes and set(pushes) == {default[1]}


def test_every_metric_the_docs_name_exists() -> None:
    """Issue 30 item 10: a `gos_websocket_*_total` counter in a page is one the server exports
    (its name, without the prefix, is in the metrics code); the misspelt prefix is never used."""
    code = "".join(p.read_text() for p in (ROOT / "app").rglob("*.py"))
    named = {
        match[1]
        for page in USER_PAGES
        for match in re.finditer(r"\bgos_web_?socket_(\w+?)_total\b", page.read_text())
    }
    assert named, "no counter named in the docs"
    assert sorted(n for n in named if not re.search(rf'["_]{re.escape(n)}"', code)) == []
    misspelt = [p.name for p in USER_PAGES if re.search(r"gos_web_socket_\w+_total", p.read_text())]
    assert misspelt == []


def test_no_install_command_names_the_unpublished_package() -> None:
    """Issue 30 item 2: `pip install gos-web-socket` cannot work (nothing is published)."""
    places = [*USER_PAGES, ROOT / "examples" / "frameworks" / "README.md"]
    places += [ROOT / "deploy" / "gos-websocket.service", ROOT / "deploy" / "Containerfile"]
    wrong = re.compile(r"pip install ['\"]?gos-web-socket")
    assert [str(p.relative_to(ROOT)) for p in places if wrong.search(p.read_text())] == []
