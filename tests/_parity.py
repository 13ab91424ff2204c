"""Reference numbers from empyrical-reloaded and quantstats, committed as a fixture.

The two libraries (and pandas, yfinance, curl-cffi… behind them) live in the opt-in ``parity``
dependency group, so the default test run does not install them. Instead
``scripts/gen_parity_fixtures.py`` calls them on every :data:`CASES` entry and writes
``tests/engine/data/parity_reference.json``; the default tests compare the code under test with
those numbers (:func:`reference`), and the tests marked ``parity`` (CI:
``uv run --group parity pytest -m parity``) recompute them live (:func:`live_reference`) and
check the committed file is still what the libraries say.

Library calls (empyrical-reloaded 0.7 / quantstats 0.0.86), on x = observed returns − tc:

* ``sharpe``: ``empyrical.sharpe_ratio(x, risk_free=rf, annualization=P)``
* ``max_drawdown``: ``empyrical.max_drawdown(x)``
* ``car_mdd``: ``empyrical.calmar_ratio(x, annualization=P)``
* ``win_ratio``: ``quantstats.stats.win_rate(Series(x))``
* ``profit_factor``: ``quantstats.stats.profit_factor(Series(x))`` (``inf`` without a loss)
* ``cagr``: ``empyrical.annual_return(x, annualization=P)``
* ``volatility``: ``empyrical.annual_volatility(x, annualization=P)``
* ``sortino``: ``empyrical.sortino_ratio(x, required_return=rf, annualization=P)``

A case is identified by a digest of its inputs, so a changed series or parameter without a
regenerated fixture fails loudly instead of comparing against stale numbers.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from tests.engine.data import DATA_DIR, load_returns

__all__ = [
    "CASES",
    "CLI_SERIES",
    "FIXTURE",
    "NODE_SERIES",
    "RECORDED_RETURNS",
    "ParityCase",
    "live_reference",
    "reference",
    "reference_for",
]

FIXTURE = DATA_DIR / "parity_reference.json"
REGENERATE = "uv run --group parity python scripts/gen_parity_fixtures.py"

# 60 daily returns drawn once with a seed, plus two flat days (so exposure < 1).
_RNG = np.random.default_rng(20240611)
CLI_SERIES: list[float] = [round(float(x), 6) for x in _RNG.normal(0.0008, 0.012, 60)] + [
    0.0,
    0.0,
]
"""The series of ``tests/cli/test_report.py``."""

NODE_SERIES: list[float] = [0.01, -0.02, 0.015, 0.003, -0.007, 0.02, -0.01]
"""The series of ``tests/sdk/test_alpha_node.py``."""

RECORDED_RETURNS: dict[tuple[str, str], list[float]] = {
    ("w1", "s1"): [0.012, -0.008, 0.015, 0.004, -0.011, 0.009, 0.006, -0.003],
    ("w1", "s2"): [-0.004, 0.007, 0.002, -0.009, 0.013, 0.001, -0.002, 0.005],
    ("w2", "s3"): [0.02, -0.015, 0.01, -0.005, 0.0, 0.008, -0.012, 0.017],
}
"""Per-period returns the SDK Runner records per (world, strategy) in the end-to-end tests."""

NO_LOSSES: list[float] = [0.01, 0.02, 0.0]
"""quantstats answers ``inf`` for its profit factor; SPEC 2.4 reports 0.0."""


@dataclass(frozen=True, slots=True)
class ParityCase:
    """One series and its parameters.

    Attributes:
        name: the key in the fixture.
        returns: raw returns (``None`` = a missing period, dropped before the libraries see it).
        periods_per_year: P.
        risk_free: rf per period (Sharpe's and Sortino's threshold).
        transaction_cost: tc per period, subtracted before the libraries see the series.
    """

    name: str
    returns: tuple[float | None, ...]
    periods_per_year: float = 252.0
    risk_free: float = 0.0
    transaction_cost: float = 0.0

    def excess(self) -> np.ndarray[Any, np.dtype[np.float64]]:
        """x = observed returns − tc (what the libraries are given)."""
        observed = np.array([v for v in self.returns if v is not None], dtype=np.float64)
        return observed - self.transaction_cost

    def digest(self) -> str:
        """sha256 of the inputs (returns as float64 bytes, NaN for a gap, and the parameters)."""
        values = np.array([np.nan if v is None else v for v in self.returns], dtype="<f8")
        params = np.array([self.periods_per_year, self.risk_free, self.transaction_cost], "<f8")
        return hashlib.sha256(values.tobytes() + params.tobytes()).hexdigest()


ENGINE_SERIES = [
    ("alpha_daily.csv", 252.0),
    ("alpha_heavy_tail.csv", 252.0),
    ("alpha_monthly.csv", 12.0),
    ("alpha_crash.csv", 252.0),
    ("alpha_gaps.csv", 252.0),
]
"""(committed csv, P) for the engine parity test."""

ENGINE_COSTS = [(0.0, 0.0), (0.0001, 0.0), (0.0, 0.0003), (0.00015, 0.0002)]
"""(rf, tc) per period for the engine parity test."""


def engine_case_name(csv_name: str, risk_free: float, transaction_cost: float) -> str:
    return f"{csv_name.removesuffix('.csv')}/rf={risk_free:g}/tc={transaction_cost:g}"


def _cases() -> dict[str, ParityCase]:
    cases: list[ParityCase] = []
    for csv_name, periods in ENGINE_SERIES:
        returns = tuple(load_returns(csv_name))
        for rf, tc in ENGINE_COSTS:
            cases.append(ParityCase(engine_case_name(csv_name, rf, tc), returns, periods, rf, tc))
    cases += [
        ParityCase("cli/daily", tuple(CLI_SERIES)),
        ParityCase("cli/monthly-rf", tuple(CLI_SERIES), 12.0, 0.0005),
        ParityCase("sdk/node", tuple(NODE_SERIES)),
        ParityCase("no-losses", tuple(NO_LOSSES)),
    ]
    cases += [
        ParityCase(f"e2e/{world}/{strategy}", tuple(returns))
        for (world, strategy), returns in RECORDED_RETURNS.items()
    ]
    return {case.name: case for case in cases}


CASES: dict[str, ParityCase] = _cases()


def live_reference(case: ParityCase) -> dict[str, float]:
    """Call empyrical-reloaded and quantstats (``parity`` group only) on ``case``."""
    with warnings.catch_warnings():
        # Their imports and pandas internals may warn; pytest turns warnings into errors.
        warnings.simplefilter("ignore")
        import empyrical
        import pandas as pd  # type: ignore[import-untyped]
        import quantstats

        x = case.excess()
        p, rf = case.periods_per_year, case.risk_free
        series = pd.Series(x)
        values = {
            "sharpe": empyrical.sharpe_ratio(x, risk_free=rf, annualization=p),
            "max_drawdown": empyrical.max_drawdown(x),
            "car_mdd": empyrical.calmar_ratio(x, annualization=p),
            "win_ratio": quantstats.stats.win_rate(series),
            "profit_factor": quantstats.stats.profit_factor(series),
            "cagr": empyrical.annual_return(x, annualization=p),
            "volatility": empyrical.annual_volatility(x, annualization=p),
            "sortino": empyrical.sortino_ratio(x, required_return=rf, annualization=p),
        }
    return {key: float(value) for key, value in values.items()}


@cache
def _fixture() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(FIXTURE.read_text())
    return document


def _decode(value: float | str) -> float:
    # JSON has no infinity: the generator writes non-finite values as the strings "inf"/"nan".
    return float(value)


def reference(name: str) -> dict[str, float]:
    """The committed library values for ``CASES[name]`` (asserts the fixture is not stale)."""
    case = CASES[name]
    entry = _fixture()["cases"].get(name)
    assert entry is not None, f"{name} is not in {FIXTURE.name}: run {REGENERATE}"
    assert entry["inputs_sha256"] == case.digest(), f"{FIXTURE.name} is stale: run {REGENERATE}"
    return {key: _decode(value) for key, value in entry["reference"].items()}


def reference_for(returns: list[float], *, periods_per_year: float = 252.0) -> dict[str, float]:
    """The committed values for a series given by value (it must be one of :data:`CASES`)."""
    probe = ParityCase("probe", tuple(returns), periods_per_year)
    for case in CASES.values():
        if case.digest() == probe.digest():
            return reference(case.name)
    raise AssertionError(f"no parity case for {returns!r}: add it to tests/_parity.py")


def encode(value: float) -> float | str:
    """A JSON-safe value: finite floats as numbers (exact repr), others as strings."""
    return value if math.isfinite(value) else repr(value)


def library_versions() -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in ("empyrical-reloaded", "quantstats", "pandas")}
