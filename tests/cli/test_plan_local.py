"""``qmtl plan FILE`` without a gateway still plans locally (the ``--gateway`` path lives in
``test_remote_commands.py``); FILE / ``--input`` handling."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from qmtl.cli.main import app

# Local planning only: a QMTL_GATEWAY_URL in the environment would send the plan remote.
runner = CliRunner(env={"QMTL_GATEWAY_URL": None})
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "rebalance.json"


def test_local_plan_serves_v1_unless_compat_v2() -> None:
    v1 = runner.invoke(app, ["plan", str(EXAMPLE), "-o", "json"])
    assert v1.exit_code == 0, v1.output
    assert json.loads(v1.stdout)["schema_version"] == 1
    v2 = runner.invoke(app, ["plan", "--input", str(EXAMPLE), "--compat-v2", "-o", "json"])
    assert v2.exit_code == 0, v2.output
    assert "alpha_metrics" in json.loads(v2.stdout)


def test_file_and_input_must_agree(tmp_path: Path) -> None:
    assert runner.invoke(app, ["plan", str(EXAMPLE), "--input", str(EXAMPLE), "-o", "json"]
                         ).exit_code == 0
    other = runner.invoke(app, ["plan", str(EXAMPLE), "--input", str(tmp_path / "x.json")])
    assert other.exit_code == 2 and "different files" in other.stderr
    missing = runner.invoke(app, ["plan"])
    assert missing.exit_code == 2 and "missing the request file" in missing.stderr
