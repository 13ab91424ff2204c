"""The worked example of the contract page (English and Korean): QMTL's alpha metrics next to
the original platform's runtime helper, recomputed here from the printed series.

Both definitions are re-implemented below in plain Python (no numpy, no QMTL code), straight
from their descriptions on the page; the QMTL column is also checked against the engine.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from qmtl.engine.alpha import alpha_performance

from ._markdown import DOCS, blocks

PAGES = [DOCS / "contract.md", DOCS / "ko" / "contract.md"]
KEYS = ("sharpe", "max_drawdown", "win_ratio", "profit_factor", "car_mdd", "rar_mdd")
ROW = re.compile(r"^\| `(\w+)` \| (-?\d+\.\d+) \| (-?\d+\.\d+) \|$", re.MULTILINE)


def _mean(xs: list[float]) -> float:
    return math.fsum(xs) / len(xs)


def _std(xs: list[float], *, ddof: int) -> float:
    mean = _mean(xs)
    return math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (len(xs) - ddof))


def standard(returns: list[float], periods: float) -> dict[str, float]:
    """SPEC 2.4 (every value defined for the example's series)."""
    n = len(returns)
    wealth, peak, mdd = 1.0, 1.0, 0.0
    for r in returns:
        wealth *= 1.0 + r
        peak = max(peak, wealth)
        mdd = min(mdd, wealth / peak - 1.0)
    cagr = wealth ** (periods / n) - 1.0
    nonzero = [r for r in returns if r != 0.0]
    exposure = len(nonzero) / n
    return {
        "sharpe": _mean(returns) / _std(returns, ddof=1) * math.sqrt(periods),
        "max_drawdown": mdd,
        "win_ratio": sum(r > 0 for r in returns) / len(nonzero),
        "profit_factor": sum(r for r in returns if r > 0) / -sum(r for r in returns if r < 0),
        "car_mdd": cagr / abs(mdd),
        "rar_mdd": cagr / exposure / abs(mdd),
    }


def original(returns: list[float]) -> dict[str, float]:
    """The original runtime helper as the page describes it: population std without
    annualisation, drawdown of the running sum, zeros counted in the win ratio, total return
    in car_mdd, the unannualised Sharpe in rar_mdd."""
    sharpe = _mean(returns) / _std(returns, ddof=0)
    running, peak, mdd = 0.0, 0.0, 0.0
    for r in returns:
        running += r
        peak = max(peak, running)
        mdd = min(mdd, running - peak)
    total = math.prod(1.0 + r for r in returns) - 1.0
    return {
        "sharpe": sharpe,
        "max_drawdown": mdd,
        "win_ratio": sum(r > 0 for r in returns) / len(returns),
        "profit_factor": sum(r for r in returns if r > 0) / -sum(r for r in returns if r < 0),
        "car_mdd": total / abs(mdd),
        "rar_mdd": sharpe / abs(mdd),
    }


def _example(page: Path) -> tuple[list[float], float, dict[str, tuple[str, str]]]:
    text = page.read_text()
    [example] = [
        b.body for b in blocks(page) if b.lang == "json" and '"periods_per_year"' in b.body
    ]
    data = json.loads(example)
    after = text[text.index(example) :]
    section = after[: after.index("\n## ")]
    rows = {key: (ours, theirs) for key, ours, theirs in ROW.findall(section)}
    return [float(r) for r in data["returns"]], float(data["periods_per_year"]), rows


def _matches(printed: str, value: float) -> bool:
    # The printed number is the value rounded to the printed decimals.
    decimals = len(printed.split(".")[1])
    return abs(float(printed) - value) <= 0.5 * 10.0**-decimals + 1e-12


@pytest.mark.parametrize("page", PAGES, ids=["en", "ko"])
def test_worked_example_numbers(page: Path) -> None:
    returns, periods, rows = _example(page)
    assert returns == [0.10, -0.05, -0.05, 0.0, 0.08] and periods == 12
    assert set(rows) == set(KEYS)
    ours, theirs = standard(returns, periods), original(returns)
    wrong = [
        (key, printed, round(value, 6))
        for key in KEYS
        for printed, value in ((rows[key][0], ours[key]), (rows[key][1], theirs[key]))
        if not _matches(printed, value)
    ]
    assert wrong == []


def test_the_standard_column_is_what_the_engine_computes() -> None:
    returns, periods, _ = _example(PAGES[0])
    engine = alpha_performance(returns, periods_per_year=periods)
    expected = standard(returns, periods)
    for key in KEYS:
        assert math.isclose(engine[f"alpha_performance.{key}"], expected[key], rel_tol=1e-12)


def test_both_pages_print_the_same_numbers() -> None:
    assert _example(PAGES[0]) == _example(PAGES[1])


def test_the_definitions_really_differ_on_the_example() -> None:
    # The example is chosen so that every named difference shows (profit factor aside).
    returns, periods, _ = _example(PAGES[0])
    ours, theirs = standard(returns, periods), original(returns)
    assert [key for key in KEYS if math.isclose(ours[key], theirs[key])] == ["profit_factor"]
