"""``qmtl report`` through its real entry point (typer CliRunner on ``qmtl.cli.main.app``).

Golden numbers come from independent libraries on the same fixed series: empyrical-reloaded
(sharpe, max drawdown, calmar) and quantstats (win rate, profit factor), read from the committed
parity fixture (``tests/_parity.py``; CI also recomputes it live).
"""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from qmtl.cli.main import app
from tests._parity import CLI_SERIES, reference

runner = CliRunner()

# 60 daily returns drawn once with a seed, plus two flat days (so exposure < 1).
SERIES: list[float] = CLI_SERIES
_CASES = {(252.0, 0.0): "cli/daily", (12.0, 0.0005): "cli/monthly-rf"}


def _golden(series: list[float], *, periods: float = 252, rf: float = 0.0) -> dict[str, float]:
    assert series is SERIES
    lib = reference(_CASES[(periods, rf)])
    r = np.array(series)
    exposure = np.count_nonzero(r) / r.size  # hand definition: share of non-zero periods
    return {
        "alpha_performance.sharpe": lib["sharpe"],
        "alpha_performance.max_drawdown": lib["max_drawdown"],
        "alpha_performance.win_ratio": lib["win_ratio"],
        "alpha_performance.profit_factor": lib["profit_factor"],
        "alpha_performance.car_mdd": lib["car_mdd"],
        "alpha_performance.rar_mdd": lib["car_mdd"] / exposure,
    }


def _invoke(*args: str) -> Any:
    return runner.invoke(app, list(args))


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _json_input(tmp_path: Path, series: list[Any] | None = None) -> Path:
    return _write(tmp_path, "returns.json", json.dumps({"returns": series or SERIES}))


def test_json_output_matches_independent_libraries(tmp_path: Path) -> None:
    result = _invoke("report", "--from", str(_json_input(tmp_path)), "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    golden = _golden(SERIES)
    assert document["observations"] == len(SERIES)
    for key, expected in golden.items():
        assert np.isclose(document["metrics"][key], expected, rtol=1e-9, atol=1e-12), key
    assert set(document["units"]) == set(golden) | {"cagr", "volatility", "sortino"}
    assert document["total_return"] == pytest.approx(float(np.prod(1 + np.array(SERIES)) - 1))


def test_markdown_lists_the_six_metrics_with_values_and_units(tmp_path: Path) -> None:
    result = _invoke("report", "--from", str(_json_input(tmp_path)))
    assert result.exit_code == 0, result.output
    for key, expected in _golden(SERIES).items():
        row = re.search(rf"\| `{re.escape(key)}` \| (-?[0-9.]+) \| (.+) \|", result.stdout)
        assert row is not None, key
        assert float(row.group(1)) == pytest.approx(expected, abs=1e-6)
        assert row.group(2).strip()
    assert "annualised" in result.stdout and "fraction of peak wealth" in result.stdout


def test_the_format_follows_the_out_suffix(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    assert _invoke("report", "--from", str(_json_input(tmp_path)), "--out", str(out)).exit_code == 0
    assert "metrics" in json.loads(out.read_text())
    md = tmp_path / "r.md"
    assert _invoke("report", "--from", str(_json_input(tmp_path)), "--out", str(md)).exit_code == 0
    assert md.read_text().startswith("# Performance report")


@pytest.mark.parametrize(
    "text",
    [
        "returns\n" + "\n".join(map(str, SERIES)) + "\n",
        "date,returns,volume\n" + "".join(f"{date(2024, 1, 1) + timedelta(days=i)},{r},{i}\n"
                                          for i, r in enumerate(SERIES)),
        "\n".join(map(str, SERIES)) + "\n",
        "ret\n" + "\n".join(map(str, SERIES)) + "\n\n",
    ],
    ids=["returns-column", "among-columns", "single-column-no-header", "single-named-column"],
)
def test_csv_inputs(tmp_path: Path, text: str) -> None:
    source = _write(tmp_path, "returns.csv", text)
    result = _invoke("report", "--from", str(source), "--format", "json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)["metrics"]
    for key, expected in _golden(SERIES).items():
        assert np.isclose(metrics[key], expected, rtol=1e-9, atol=1e-12), key


def test_periods_per_year_and_risk_free(tmp_path: Path) -> None:
    result = _invoke("report", "--from", str(_json_input(tmp_path)), "--format", "json",
                     "--periods-per-year", "12", "--risk-free", "0.0005")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)["metrics"]
    golden = _golden(SERIES, periods=12, rf=0.0005)
    assert np.isclose(metrics["alpha_performance.sharpe"], golden["alpha_performance.sharpe"])
    assert np.isclose(metrics["alpha_performance.car_mdd"], golden["alpha_performance.car_mdd"])


def test_undefined_metrics_are_marked(tmp_path: Path) -> None:
    # No losing period: profit factor is undefined (0.0); one drawdown-free series: car/rar too.
    source = _json_input(tmp_path, [0.01, 0.02, 0.0])
    result = _invoke("report", "--from", str(source))
    assert result.exit_code == 0
    assert "no losing period" in result.stdout and "no drawdown" in result.stdout


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("r.json", '{"values": [0.1]}', 'missing "returns"'),
        ("r.json", '{"returns": [0.1, null]}', "returns[1] is null"),
        ("r.json", '{"returns": [0.1, "0.2"]}', "returns[1] is str"),
        ("r.json", '{"returns": [0.1, true]}', "returns[1] is bool"),
        ("r.json", '{"returns": [0.1, Infinity]}', "Infinity is not a valid return"),
        ("r.json", '{"returns": [NaN]}', "NaN is not a valid return"),
        ("r.json", '{"returns": [1e999]}', "returns[0] is inf"),
        ("r.json", '{"returns": []}', "no returns"),
        ("r.json", '{"returns": 0.1}', "must be a list"),
        ("r.json", "[0.1, 0.2]", "expected a JSON object"),
        ("r.json", '{"returns": [0.1,', "not valid JSON"),
        ("r.csv", "returns\n0.1\nabc\n", "line 3: 'abc' is not a number"),
        ("r.json", '{"returns": {"a": [0.1], "b": [0.1, 0.2]}}', "differ in length"),
        ("r.json", '{"returns": [0.1], "dates": ["x"]}', "dates[0] is 'x'"),
        ("r.csv", "returns,x\n0.1,1\n,2\n", "line 3: empty returns value"),
        ("r.csv", "returns\n0.1\ninf\n", "line 3: 'inf' is not a finite return"),
        ("r.csv", "date,a\n2024-01-02,1\n2024-01-01,2\n", "date 2024-01-01 is not after"),
        ("r.csv", "date,a\n2024-13-02,1\n", "'2024-13-02' is not an ISO date"),
        ("r.csv", "0.1,0.2\n", "2 columns and no header"),
        ("r.csv", "", "empty"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, name: str, text: str,
                                          message: str) -> None:
    result = _invoke("report", "--from", str(_write(tmp_path, name, text)))
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_a_missing_file_is_bad_input(tmp_path: Path) -> None:
    result = _invoke("report", "--from", str(tmp_path / "nope.json"))
    assert result.exit_code == 2
    assert "cannot read" in result.stderr


@pytest.mark.parametrize("periods", ["0", "-12"])
def test_bad_periods_per_year_is_bad_input(tmp_path: Path, periods: str) -> None:
    result = _invoke("report", "--from", str(_json_input(tmp_path)), "--periods-per-year", periods)
    assert result.exit_code == 2
    assert "--periods-per-year" in result.stderr
