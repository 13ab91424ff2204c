"""``qmtl plan FILE --explain``: the explain document locally, as JSON or tables."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from qmtl.cli.main import app

runner = CliRunner(env={"QMTL_GATEWAY_URL": None})
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "rebalance.json"


def test_explain_json_final_deltas_are_the_plans() -> None:
    explained = runner.invoke(app, ["plan", str(EXAMPLE), "--explain", "-o", "json"])
    assert explained.exit_code == 0, explained.output
    doc = json.loads(explained.stdout)
    assert "schema_version" not in doc
    plan = json.loads(runner.invoke(app, ["plan", str(EXAMPLE), "-o", "json"]).stdout)
    for world, planned in plan["per_world"].items():
        finals = [
            (k["symbol"], k["final_delta"])
            for k in doc["per_world"][world]["keys"]
            if k["final_delta"] != 0
        ]
        assert finals == [(d["symbol"], d["delta_qty"]) for d in planned["deltas"]]


def test_explain_table_names_the_disposition() -> None:
    result = runner.invoke(app, ["plan", str(EXAMPLE), "--explain"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "Rebalance explain" in result.stdout and "traded" in result.stdout


def test_explain_refuses_a_gateway_and_hybrid(tmp_path: Path) -> None:
    remote = runner.invoke(app, ["plan", str(EXAMPLE), "--explain", "--gateway", "http://x"])
    assert remote.exit_code == 2
    hybrid = tmp_path / "hybrid.json"
    hybrid.write_text(json.dumps({**json.loads(EXAMPLE.read_text()), "mode": "hybrid"}))
    refused = runner.invoke(app, ["plan", str(hybrid), "--explain"])
    assert refused.exit_code == 2 and "E_REBALANCE_MODE_UNSUPPORTED" in refused.stderr
