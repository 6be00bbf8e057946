"""docs/README.md indexes every guide, and every relative link in the docs and README resolves."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _relative_links(page: Path) -> list[str]:
    return [link for link in _LINK.findall(page.read_text(encoding="utf-8")) if "://" not in link]


def test_the_index_links_every_guide() -> None:
    linked = {Path(link).name for link in _relative_links(DOCS / "README.md")}
    guides = {page.name for page in DOCS.glob("*.md")} - {"README.md"}
    assert guides - linked == set(), "docs/README.md does not link these guides"


def test_every_relative_link_in_the_docs_resolves() -> None:
    pages = [ROOT / "README.md", ROOT / "CHANGELOG.md", *DOCS.glob("*.md")]
    broken = [
        f"{page.relative_to(ROOT)} -> {link}"
        for page in pages
        for link in _relative_links(page)
        if not (page.parent / link).exists()
    ]
    assert broken == []
