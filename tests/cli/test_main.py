"""The ``qmtl`` entry point stays cheap: no QMTL module, SDK, httpx, numpy or pydantic is
imported for ``qmtl --help``; the root help lists every command with its full summary, and
the summaries agree with the commands' own help."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from qmtl.cli.main import COMMANDS, app

runner = CliRunner()
HEAVY = ("qmtl.sdk", "qmtl.contracts", "qmtl.engine", "httpx", "numpy", "pydantic", "uvicorn",
         "fastapi", "websockets")


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_help_imports_nothing_heavy() -> None:
    loaded = _modules_after(
        "import contextlib, io\nfrom qmtl.cli.main import app\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    app(['--help'])")
    assert sorted(m for m in loaded if m.split(".")[0] in {h.split(".")[0] for h in HEAVY}
                  and any(m == h or m.startswith(h + ".") for h in HEAVY)) == []
    assert not any(m.startswith("qmtl.cli.") and m != "qmtl.cli.main" for m in loaded)


def test_plan_help_does_not_import_the_sdk() -> None:
    loaded = _modules_after(
        "import contextlib, io\nfrom qmtl.cli.main import app\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    app(['plan', '--help'])")
    assert "qmtl.sdk" not in loaded and "httpx" not in loaded


def test_root_help_lists_every_command_with_its_whole_summary() -> None:
    result = runner.invoke(app, ["--help"], terminal_width=80)
    assert result.exit_code == 0
    flat = " ".join(result.stdout.split())
    for name, entry in COMMANDS.items():
        assert f"{name} {entry.summary}" in flat
    assert "..." not in result.stdout.replace("[ARGS]...", "") and "…" not in result.stdout
    # both event names are explained where every user starts
    assert "rebalancing_planned" in flat and "rebalancing.planned" in flat


@pytest.mark.parametrize("name", list(COMMANDS))
def test_summary_matches_the_command(name: str) -> None:
    command: Any = typer.main.get_command(app).commands[name]
    first = " ".join((command.help or "").strip().split("\n\n")[0].split())
    assert first == COMMANDS[name].summary


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_help_renders_without_markup_or_cuts(name: str) -> None:
    result = runner.invoke(app, [name, "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    assert "…" not in result.stdout and "[/" not in result.stdout
    assert re.search(r"\w \.(\s|$)", result.stdout) is None  # a dropped [markup] leaves " ."
