"""The Korean pages (the reader tasks, the services and operations) do not drift from the English.

Code samples are shared, not translated: a Korean page carries exactly the English page's
fenced blocks (so the SDK tutorial's Korean code is what ``tests/sdk/test_docs_sdk.py`` runs)
and the same section structure.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ._markdown import DOCS, blocks, prose

PAIRS = {
    "contract": (DOCS / "contract.md", DOCS / "ko" / "contract.md"),
    "checklist": (DOCS / "checklist.md", DOCS / "ko" / "checklist.md"),
    "sdk": (DOCS / "sdk.md", DOCS / "ko" / "sdk.md"),
    "report": (DOCS / "reference" / "report.md", DOCS / "ko" / "reference" / "report.md"),
    "worldservice": (DOCS / "worldservice.md", DOCS / "ko" / "worldservice.md"),
    "gateway": (DOCS / "gateway.md", DOCS / "ko" / "gateway.md"),
    **{
        f"operations/{page}": (
            DOCS / "operations" / f"{page}.md",
            DOCS / "ko" / "operations" / f"{page}.md",
        )
        for page in ("index", "embedded", "deploy", "health", "metrics", "rehearsal")
    },
    "cli": (DOCS / "reference" / "cli.md", DOCS / "ko" / "reference" / "cli.md"),
    "console": (DOCS / "console.md", DOCS / "ko" / "console.md"),
}
HANGUL = re.compile(r"[\uac00-\ud7a3]")


def _headings(path: Path, level: int) -> int:
    # Outside code blocks: a `# comment` in a shell sample is not a heading.
    return len(re.findall(rf"^{'#' * level} ", prose(path), re.MULTILINE))


@pytest.mark.parametrize("name", PAIRS)
def test_the_korean_page_exists_and_is_korean(name: str) -> None:
    _, ko = PAIRS[name]
    assert ko.is_file()
    assert len(HANGUL.findall(ko.read_text())) > 200


@pytest.mark.parametrize("name", PAIRS)
def test_same_sections(name: str) -> None:
    en, ko = PAIRS[name]
    assert [_headings(ko, level) for level in (1, 2, 3)] == \
        [_headings(en, level) for level in (1, 2, 3)]


@pytest.mark.parametrize("name", PAIRS)
def test_same_code_blocks(name: str) -> None:
    en, ko = PAIRS[name]
    assert [(b.lang, b.body) for b in blocks(ko)] == [(b.lang, b.body) for b in blocks(en)]


def test_korean_sdk_tutorial_has_the_same_code() -> None:
    en, ko = PAIRS["sdk"]
    python = [b.body for b in blocks(en) if b.lang == "python"]
    assert len(python) >= 5
    assert [b.body for b in blocks(ko) if b.lang == "python"] == python


def test_the_korean_home_page_links_every_korean_page() -> None:
    home = (DOCS / "ko" / "index.md").read_text()
    for _, ko in PAIRS.values():
        assert f"]({ko.relative_to(DOCS / 'ko')})" in home
