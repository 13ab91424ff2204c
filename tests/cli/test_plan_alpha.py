"""``qmtl plan`` (local) with an ``alpha_series`` the metrics cannot use: one line naming
``alpha_series.<path>`` and exit 2, not a traceback (SPEC 2.4)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from qmtl.cli.main import app

runner = CliRunner(env={"QMTL_GATEWAY_URL": None})


def _request(tmp_path: Path, alpha_series: dict[str, object]) -> Path:
    path = tmp_path / "request.json"
    path.write_text(
        json.dumps(
            {
                "total_equity": 1000.0,
                "world_alloc_before": {"w1": 0.5},
                "world_alloc_after": {"w1": 0.5, "w2": 0.2},
                "schema_version": 2,
                "alpha_series": alpha_series,
            }
        )
    )
    return path


def test_pnl_without_capital_base_exits_2_naming_the_series(tmp_path: Path) -> None:
    path = _request(tmp_path, {"per_world": {"w2": {"pnl": [5.0, -1.0]}}})
    result = runner.invoke(app, ["plan", str(path), "--compat-v2", "-o", "json"])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "alpha_series.per_world.w2.pnl" in result.stderr
    assert "world_alloc_before[w2]" in result.stderr
    assert "Traceback" not in result.output


def test_equity_touching_zero_exits_2(tmp_path: Path) -> None:
    path = _request(tmp_path, {"per_world": {"w1": {"equity": [500.0, 0.0, 10.0]}}})
    result = runner.invoke(app, ["plan", str(path), "--compat-v2", "-o", "json"])
    assert result.exit_code == 2, result.output
    assert "alpha_series.per_world.w1.equity[1]" in result.stderr


def test_usable_series_plans_with_coverage(tmp_path: Path) -> None:
    path = _request(tmp_path, {"per_world": {"w1": {"pnl": [5.0, -1.0]}}})
    result = runner.invoke(app, ["plan", str(path), "--compat-v2", "-o", "json"])
    assert result.exit_code == 0, result.output
    coverage = json.loads(result.stdout)["alpha_metrics"]["coverage"]
    # B = 1000 x 0.5 = 500: 5/500 and -1/505 -> two observations, every metric defined
    assert coverage["per_world"]["w1"] == {"observations": 2, "undefined": []}
    assert coverage["per_world"]["w2"]["observations"] == 0
