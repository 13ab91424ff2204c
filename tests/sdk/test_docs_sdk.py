"""Every ```python block of docs/sdk.md runs against a real ``qmtl up`` (STYLE 14: samples are
tested). The blocks use http://127.0.0.1:8000; the test points them at the fixture's port."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli._up import QmtlUp

pytestmark = pytest.mark.e2e

DOC = Path(__file__).resolve().parents[2] / "docs" / "sdk.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


@pytest.fixture(scope="module")
def docs_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QmtlUp]:
    up = QmtlUp(tmp_path_factory.mktemp("docs-up")).start()
    try:
        yield up
    finally:
        up.stop()


def test_the_page_has_code_blocks() -> None:
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_code_block_runs(docs_up: QmtlUp, index: int) -> None:
    code = BLOCKS[index].replace("http://127.0.0.1:8000", docs_up.gateway_url)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, f"{DOC.name}[{index}]", "exec"), {"__name__": "__docs__"})
    printed = out.getvalue()
    assert printed.strip(), "every sample prints something"
    # Comments of the form `# value` next to a print state the expected output.
    for expected in re.findall(r"print\(.*\)\s+# (.+)", BLOCKS[index]):
        assert all(part in printed for part in expected.split()), expected
