"""``qmtl report`` tear sheets through the real entry point: HTML charts, dates, several
strategies, a benchmark, request input and ``--out`` checks.

The HTML is parsed (``html.parser``), not pattern-matched: the metric table's cells carry their
full-precision value in ``data-value``; the charts are inline SVG whose labels stay ``<text>``.
Golden numbers: hand calculations below, and empyrical-reloaded's committed values (CAGR,
volatility, Sortino) from ``tests/_parity.py``.
"""

from __future__ import annotations

import csv
import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from qmtl.cli.main import app
from tests._parity import CLI_SERIES, reference

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "returns.csv"


class _Page(HTMLParser):
    """Collects element ids, metric cells, svg texts and the monthly tables of a report."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: dict[str, str] = {}
        self.metrics: dict[str, list[float]] = {}
        self.headers: list[str] = []
        self.svg_text: dict[str, list[str]] = {}
        self.monthly: dict[str, list[list[str | None]]] = {}
        self.notes: list[str] = []
        self._stack: list[tuple[str, dict[str, str | None]]] = []
        self._figure: str | None = None
        self._table: str | None = None
        self._row: str | None = None
        self._in_text = self._in_th = self._in_note = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids[str(a["id"])] = tag
        if tag == "figure":
            self._figure = a.get("id")
        if tag == "table":
            self._table = a.get("id")
            if self._table and self._table.startswith("monthly-"):
                self.monthly[self._table] = []
        if tag == "tr":
            self._row = a.get("data-key")
            if self._table and self._table.startswith("monthly-"):
                self.monthly[self._table].append([])
        if tag == "td" and self._table == "metrics" and self._row and "data-value" in a:
            self.metrics.setdefault(self._row, []).append(float(str(a["data-value"])))
        if tag == "td" and self._table and self._table.startswith("monthly-"):
            self.monthly[self._table][-1].append(a.get("data-value"))
        self._in_th = tag == "th" and self._table == "metrics"
        self._in_text = tag == "text" and self._figure is not None
        self._in_note = tag == "p" and "note" in str(a.get("class", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure":
            self._figure = None
        if tag == "table":
            self._table = None
        if tag in ("text", "th", "p"):
            self._in_text = self._in_th = self._in_note = False

    def handle_data(self, data: str) -> None:
        if self._in_text and self._figure:
            self.svg_text.setdefault(self._figure, []).append(data.strip())
        if self._in_th:
            self.headers.append(data.strip())
        if self._in_note:
            self.notes.append(data.strip())


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


def _invoke(*args: str) -> Any:
    return runner.invoke(app, list(args))


def _example_columns() -> tuple[list[str], dict[str, list[float]]]:
    with EXAMPLE.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    names = [n for n in rows[0] if n != "date"]
    return [r["date"] for r in rows], {n: [float(r[n]) for r in rows] for n in names}


def _html(tmp_path: Path, *args: str) -> _Page:
    out = tmp_path / "report.html"
    result = _invoke("report", "--out", str(out), *args)
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>")
    # one self-contained file: no script, no external resource (namespace names aside)
    assert "<script" not in text and "<link" not in text and "<img" not in text
    without_namespaces = re.sub(r'xmlns(:\w+)?="[^"]*"', "", text)
    assert "http://" not in without_namespaces and "https://" not in without_namespaces
    return _parse(text)


def _hand_stats(r: np.ndarray, periods: float = 252.0) -> dict[str, float]:
    # Independent formulas written out by hand (SPEC 2.4 notation).
    n = r.size
    wealth = float(np.prod(1.0 + r))
    excess_down = np.minimum(r, 0.0)
    return {
        "cagr": wealth ** (periods / n) - 1.0,
        "volatility": math.sqrt(((r - r.mean()) ** 2).sum() / (n - 1)) * math.sqrt(periods),
        "sortino": r.mean() * math.sqrt(periods) / math.sqrt((excess_down**2).mean()),
    }


def test_example_tear_sheet_has_dated_charts_metrics_and_monthly_table(tmp_path: Path) -> None:
    page = _html(tmp_path, "--from", str(EXAMPLE), "--benchmark", "market", "--log-scale")
    dates, columns = _example_columns()

    assert {"chart-equity", "chart-drawdown", "chart-rolling"} <= set(page.ids)
    assert page.headers[1:5] == ["trend", "carry", "reversal", "benchmark: market"]
    # dates from the input on the x axis: every year of the file labels the equity chart
    for year in ("2020", "2021", "2022", "2023", "2024"):
        assert year in page.svg_text["chart-equity"], year
    assert "benchmark: market" in page.svg_text["chart-equity"]
    assert any("log scale" in t for t in page.svg_text["chart-equity"])
    assert "Rolling Sharpe and volatility (63 periods)" in page.svg_text["chart-rolling"]

    for index, name in enumerate(["trend", "carry", "reversal", "market"]):
        r = np.array(columns[name])
        hand = _hand_stats(r)
        for key in ("cagr", "volatility", "sortino"):
            assert page.metrics[key][index] == pytest.approx(hand[key], rel=1e-9), (name, key)
        # the maximum drawdown is marked, with the date of the trough
        wealth = np.concatenate(([1.0], np.cumprod(1.0 + r)))
        drawdown = wealth / np.maximum.accumulate(wealth) - 1.0
        trough = int(np.argmin(drawdown))
        assert page.metrics["alpha_performance.max_drawdown"][index] == pytest.approx(
            drawdown[trough], rel=1e-9
        )
        if name != "market":  # the underwater chart shows the strategies
            label = f"max {drawdown[trough] * 100:.1f} % on {dates[trough - 1]}"
            assert label in page.svg_text["chart-drawdown"]

    # monthly table: January 2020 of "trend" compounded by hand, and the year 2020
    trend = np.array(columns["trend"])
    january = np.array([d.startswith("2020-01") for d in dates])
    year = np.array([d.startswith("2020") for d in dates])
    rows = [row for row in page.monthly["monthly-trend"] if row]  # the head row has no td
    first_row = rows[0]
    assert float(str(first_row[0])) == pytest.approx(np.prod(1 + trend[january]) - 1, rel=1e-12)
    assert float(str(first_row[12])) == pytest.approx(np.prod(1 + trend[year]) - 1, rel=1e-12)
    assert len(rows) == 5  # 2020…2024


def test_statistics_match_empyrical(tmp_path: Path) -> None:
    source = tmp_path / "r.json"
    source.write_text(json.dumps({"returns": CLI_SERIES}))
    result = _invoke("report", "--from", str(source), "--format", "json")
    assert result.exit_code == 0, result.output
    statistics = json.loads(result.stdout)["statistics"]
    lib = reference("cli/daily")  # empyrical annual_return / annual_volatility / sortino_ratio
    for key in ("cagr", "volatility", "sortino"):
        assert statistics[key] == pytest.approx(lib[key], rel=1e-10), key


def test_hand_calculated_statistics_on_four_returns(tmp_path: Path) -> None:
    # r = 0.1, -0.05, 0.02, -0.01 monthly (P = 12):
    # W4 = 1.1 × 0.95 × 1.02 × 0.99 = 1.055241; CAGR = W4^(12/4) − 1 = 0.175046…
    # mean = 0.015; deviations 0.085, −0.065, 0.005, −0.025: Σ² = 0.0121, std = √(0.0121/3)
    # downside √((0.05² + 0.01²)/4) = 0.0254951
    # sortino = 0.015 × √12 / 0.0254951 = 2.038098…
    source = tmp_path / "r.json"
    source.write_text(json.dumps({"returns": [0.1, -0.05, 0.02, -0.01]}))
    result = _invoke(
        "report", "--from", str(source), "--format", "json", "--periods-per-year", "12"
    )
    statistics = json.loads(result.stdout)["statistics"]
    assert statistics["cagr"] == pytest.approx(1.055241**3 - 1, rel=1e-9)
    assert statistics["volatility"] == pytest.approx(math.sqrt(0.0121 / 3) * math.sqrt(12))
    assert statistics["sortino"] == pytest.approx(2.038098, rel=1e-6)


def test_several_strategies_in_json_and_markdown(tmp_path: Path) -> None:
    result = _invoke(
        "report",
        "--from",
        str(EXAMPLE),
        "--column",
        "trend",
        "--column",
        "carry",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [s["name"] for s in document["strategies"]] == ["trend", "carry"]
    assert document["benchmark"] is None
    assert document["start"] == "2020-01-02" and document["end"] == "2024-12-31"
    # the top level keeps the one-series shape (the first strategy)
    assert document["metrics"] == document["strategies"][0]["metrics"]
    md = _invoke("report", "--from", str(EXAMPLE), "--column", "trend", "--column", "carry")
    assert "| metric | trend | carry | unit |" in md.stdout


def test_benchmark_from_a_file_is_aligned_by_date(tmp_path: Path) -> None:
    dates, columns = _example_columns()
    strategy = tmp_path / "s.csv"
    strategy.write_text(
        "date,alpha\n"
        + "".join(f"{d},{v}\n" for d, v in zip(dates[10:20], columns["trend"][10:20], strict=True))
    )
    bench = tmp_path / "bench.csv"
    bench.write_text(
        "date,returns\n"
        + "".join(f"{d},{v}\n" for d, v in zip(dates, columns["market"], strict=True))
    )
    result = _invoke(
        "report", "--from", str(strategy), "--benchmark", str(bench), "--format", "json"
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["benchmark"]["name"] == "bench"
    expected = float(np.prod(1 + np.array(columns["market"][10:20])) - 1)
    assert document["benchmark"]["total_return"] == pytest.approx(expected)


def test_without_dates_the_x_axis_is_the_period_index(tmp_path: Path) -> None:
    source = tmp_path / "r.json"
    source.write_text(json.dumps({"returns": CLI_SERIES}))
    page = _html(tmp_path, "--from", str(source))
    assert "period" in page.svg_text["chart-equity"]
    assert any("No dates in the input" in note for note in page.notes)
    assert any("fewer than 63 periods" in note for note in page.notes)  # 62 returns
    assert "monthly-returns" not in page.ids


def _request(tmp_path: Path, alpha_series: dict[str, Any], **extra: Any) -> Path:
    body = {
        "total_equity": 100_000.0,
        "world_alloc_after": {"w1": 0.5},
        "alpha_series": alpha_series,
        **extra,
    }
    path = tmp_path / "request.json"
    path.write_text(json.dumps(body))
    return path


def test_report_from_a_request_alpha_series_pnl_uses_the_capital_base(tmp_path: Path) -> None:
    # B = total_equity × world_alloc_before[w1] = 100 000 × 0.4 = 40 000
    # r1 = 400 / 40 000 = 0.01; r2 = −200 / 40 400; r3 = 600 / 40 200
    request = _request(
        tmp_path,
        {
            "per_world": {"w1": {"pnl": [400, -200, 600]}},
            "per_strategy": {"s1": {"w1": {"returns": [0.02, -0.01]}}},
        },
        world_alloc_before={"w1": 0.4},
    )
    result = _invoke("report", "--from", str(request), "--world", "w1", "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [s["name"] for s in document["strategies"]] == ["w1", "s1"]
    r = np.array([400 / 40_000, -200 / 40_400, 600 / 40_200])
    assert document["total_return"] == pytest.approx(float(np.prod(1 + r) - 1))
    assert document["total_return"] == pytest.approx(800 / 40_000)  # the pnl adds up
    assert document["strategies"][1]["total_return"] == pytest.approx(1.02 * 0.99 - 1)
    assert any("capital base of 40000" in note for note in document["notes"])


def test_a_pnl_series_without_capital_base_is_bad_input(tmp_path: Path) -> None:
    request = _request(tmp_path, {"per_world": {"w1": {"pnl": [400, -200]}}})
    result = _invoke("report", "--from", str(request), "--world", "w1")
    assert result.exit_code == 2
    assert "alpha_series.per_world.w1.pnl needs a capital base" in result.stderr


def test_request_needs_a_known_world(tmp_path: Path) -> None:
    request = _request(tmp_path, {"per_world": {"w1": {"returns": [0.01]}}})
    missing = _invoke("report", "--from", str(request), "--world", "w9")
    assert missing.exit_code == 2 and "worlds with series: w1" in missing.stderr
    no_world = _invoke("report", "--from", str(request))
    assert no_world.exit_code == 2 and "pass --world W" in no_world.stderr


def test_out_into_a_missing_folder_is_an_error(tmp_path: Path) -> None:
    target = tmp_path / "nope" / "report.html"
    result = _invoke("report", "--from", str(EXAMPLE), "--out", str(target))
    assert result.exit_code == 2
    assert "does not exist" in result.stderr
    assert not target.parent.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--column", "nope"], "--column nope: no such column"),
        (["--benchmark", "nope"], "--benchmark nope: not a column of the input and not a file"),
        (["--rolling-window", "1"], "--rolling-window must be at least 2"),
    ],
)
def test_bad_options_are_exit_2(args: list[str], message: str) -> None:
    result = _invoke("report", "--from", str(EXAMPLE), *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_the_html_is_byte_stable(tmp_path: Path) -> None:
    source = tmp_path / "r.json"
    source.write_text(json.dumps({"returns": CLI_SERIES}))
    first = _invoke("report", "--from", str(source), "--format", "html").stdout
    second = _invoke("report", "--from", str(source), "--format", "html").stdout
    assert first == second


def test_a_long_series_is_thinned_but_keeps_its_deepest_drawdown(tmp_path: Path) -> None:
    # 20,000 returns with one crash in the middle: the page stays small and the marked
    # maximum drawdown is the true one (thinning keeps each curve's extremes).
    rng = np.random.default_rng(11)
    returns = rng.normal(0.0003, 0.008, 20_000)
    returns[12_345] = -0.4
    source = tmp_path / "long.json"
    source.write_text(json.dumps({"returns": returns.tolist()}))
    out = tmp_path / "long.html"
    assert _invoke("report", "--from", str(source), "--out", str(out)).exit_code == 0
    assert out.stat().st_size < 1_500_000
    page = _parse(out.read_text())
    wealth = np.concatenate(([1.0], np.cumprod(1.0 + returns)))
    drawdown = wealth / np.maximum.accumulate(wealth) - 1.0
    trough = int(np.argmin(drawdown))
    assert f"max {drawdown[trough] * 100:.1f} % at {trough}" in page.svg_text["chart-drawdown"]


def test_json_with_dates_and_named_series(tmp_path: Path) -> None:
    source = tmp_path / "r.json"
    source.write_text(
        json.dumps(
            {
                "dates": ["2024-01-31", "2024-02-29", "2024-03-28"],
                "returns": {"a": [0.01, -0.02, 0.03], "b": [0.0, 0.01, 0.01]},
                "benchmark": [0.02, 0.0, -0.01],
            }
        )
    )
    result = _invoke("report", "--from", str(source), "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert (document["start"], document["end"]) == ("2024-01-31", "2024-03-28")
    assert [s["name"] for s in document["strategies"]] == ["a", "b"]
    assert document["benchmark"]["total_return"] == pytest.approx(1.02 * 0.99 - 1)
    page = _html(tmp_path, "--from", str(source), "--periods-per-year", "12")
    rows = [row for row in page.monthly["monthly-a"] if row]
    assert [float(str(v)) for v in rows[0][:3]] == pytest.approx([0.01, -0.02, 0.03])
