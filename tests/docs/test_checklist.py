"""The schema coordination checklist: no box ticked without proof, and the Korean copy agrees.

A ticked item must cite pytest node ids (``tests/…py::test_name``) that exist, or a command;
an unticked item must say why it is not proven yet.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from ._markdown import DOCS, ROOT

EN = DOCS / "checklist.md"
KO = DOCS / "ko" / "checklist.md"
NODE = re.compile(r"`(tests/[\w/]+\.py)::([\w:]+)(?:\[[^\]]*\])?`")
COMMAND = re.compile(r"`((?:PYTHONFAULTHANDLER=1 )?uv run [^`]+|qmtl [^`]+)`")
ITEM = re.compile(r"^- \[(?P<tick>[ x])\] (?P<text>.*?)(?=^- \[[ x]\] |^#|\Z)",
                  re.MULTILINE | re.DOTALL)
REASON = {EN: "Not yet proven", KO: "아직 증명되지 않음"}


@dataclass(frozen=True)
class Item:
    ticked: bool
    text: str
    nodes: tuple[tuple[str, str], ...]
    commands: tuple[str, ...]


def items(page: Path) -> list[Item]:
    found = []
    for m in ITEM.finditer(page.read_text()):
        text = m.group("text")
        found.append(Item(ticked=m.group("tick") == "x", text=text,
                          nodes=tuple(NODE.findall(text)),
                          commands=tuple(COMMAND.findall(text))))
    return found


def _defined(path: Path) -> set[str]:
    """``name`` for module-level tests and ``Class::name`` for methods."""
    tree = ast.parse(path.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            for sub in node.body:
                if isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef):
                    names.add(f"{node.name}::{sub.name}")
    return names


def test_the_checklist_has_the_seed_sections_and_items() -> None:
    found = items(EN)
    assert len(found) >= 20
    text = EN.read_text()
    for heading in ("## 1. WorldService", "## 2. Gateway", "## 3. SDK runtime",
                    "## 4. Shared deliverables"):
        assert heading in text


@pytest.mark.parametrize("page", [EN, KO], ids=["en", "ko"])
def test_ticked_items_cite_existing_tests(page: Path) -> None:
    problems = []
    for item in items(page):
        if not item.ticked:
            continue
        if not item.nodes and not item.commands:
            problems.append(f"ticked without proof: {item.text[:80]!r}")
        for file, name in item.nodes:
            path = ROOT / file
            if not path.is_file():
                problems.append(f"{file} does not exist")
            elif name not in _defined(path):
                problems.append(f"{file}::{name} does not exist")
    assert problems == []


@pytest.mark.parametrize("page", [EN, KO], ids=["en", "ko"])
def test_unticked_items_give_the_reason(page: Path) -> None:
    for item in items(page):
        if not item.ticked:
            assert REASON[page] in " ".join(item.text.split()), item.text[:80]


def test_korean_checklist_matches_english() -> None:
    en, ko = items(EN), items(KO)
    assert [i.ticked for i in ko] == [i.ticked for i in en]
    assert [i.nodes for i in ko] == [i.nodes for i in en]
    assert [i.commands for i in ko] == [i.commands for i in en]


def test_the_parser_sees_a_missing_test(tmp_path: Path) -> None:
    page = tmp_path / "checklist.md"
    page.write_text("## 1\n\n- [x] **thing.** Proof: `tests/docs/test_checklist.py::nope`.\n"
                    "- [ ] **other.** Not yet proven: later.\n")
    found = items(page)
    assert [(i.ticked, i.nodes) for i in found] == [
        (True, (("tests/docs/test_checklist.py", "nope"),)), (False, ())]
    assert "nope" not in _defined(ROOT / "tests/docs/test_checklist.py")
