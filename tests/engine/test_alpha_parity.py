"""alpha_performance agrees with empyrical-reloaded and quantstats on committed series (SPEC 2.4).

The library values are read from ``tests/engine/data/parity_reference.json`` (written by
``scripts/gen_parity_fixtures.py``; the calls are listed in ``tests/_parity.py``), so this module
runs without the libraries installed. Neither library has a transaction cost, so x = r − tc is
what they were given; only empyrical's Sharpe takes a risk-free rate.

The tests marked ``parity`` call the libraries live (``uv run --group parity pytest -m parity``,
run by CI): the committed numbers must still be what they answer.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from qmtl.engine.alpha import alpha_performance, alpha_performance_detail
from tests._parity import (
    CASES,
    ENGINE_COSTS,
    ENGINE_SERIES,
    FIXTURE,
    engine_case_name,
    live_reference,
    reference,
)
from tests.engine.data import load_returns

RTOL = 1e-10
ATOL = 1e-13
SPEC_KEYS = ("sharpe", "max_drawdown", "car_mdd", "win_ratio", "profit_factor")


@pytest.mark.parametrize(("name", "periods_per_year"), ENGINE_SERIES)
@pytest.mark.parametrize(("risk_free", "transaction_cost"), ENGINE_COSTS)
def test_matches_empyrical_and_quantstats(
    name: str, periods_per_year: float, risk_free: float, transaction_cost: float
) -> None:
    raw = load_returns(name)
    expected = reference(engine_case_name(name, risk_free, transaction_cost))

    ours = alpha_performance(
        raw,
        periods_per_year=periods_per_year,
        risk_free=risk_free,
        transaction_cost=transaction_cost,
    )
    for key in SPEC_KEYS:
        want = expected[key]
        assert np.isfinite(want), (key, want)
        got = ours[f"alpha_performance.{key}"]
        assert np.isclose(got, want, rtol=RTOL, atol=ATOL), (key, got, want)

    # rar_mdd has no library twin: calmar / exposure, exposure counted with plain numpy
    observed = np.array([v for v in raw if v is not None]) - transaction_cost
    exposure = np.count_nonzero(observed) / observed.size
    assert np.isclose(
        ours["alpha_performance.rar_mdd"], expected["car_mdd"] / exposure, rtol=RTOL, atol=ATOL
    )


def test_fixtures_exercise_the_interesting_cases() -> None:
    # guard against a regenerated fixture losing what the parity test relies on
    daily = np.array(load_returns("alpha_daily.csv"), dtype=float)
    assert np.count_nonzero(daily == 0.0) > 20  # flat periods -> exposure < 1
    crash = alpha_performance(load_returns("alpha_crash.csv"))
    assert crash["alpha_performance.max_drawdown"] < -0.5
    assert crash["alpha_performance.car_mdd"] < 0  # negative CAGR
    gaps = alpha_performance_detail(load_returns("alpha_gaps.csv"))
    assert 400 < gaps.observations < 500


def test_gaps_are_dropped_not_zero_filled() -> None:
    raw = load_returns("alpha_gaps.csv")
    dense = [v for v in raw if v is not None]
    assert alpha_performance(raw) == alpha_performance(dense)
    zero_filled = alpha_performance([0.0 if v is None else v for v in raw])
    assert (
        zero_filled["alpha_performance.sharpe"]
        != alpha_performance(raw)["alpha_performance.sharpe"]
    )


def test_profit_factor_without_losses_differs_from_quantstats_on_purpose() -> None:
    # quantstats answers inf; SPEC 2.4 reports the documented finite default 0.0
    case = CASES["no-losses"]
    assert reference("no-losses")["profit_factor"] == float("inf")
    assert alpha_performance(list(case.returns))["alpha_performance.profit_factor"] == 0.0


def test_every_case_is_in_the_fixture() -> None:
    committed = json.loads(FIXTURE.read_text())["cases"]
    assert set(committed) == set(CASES)
    for name in CASES:
        reference(name)  # asserts the inputs digest matches


@pytest.mark.parity
@pytest.mark.parametrize("name", sorted(CASES))
def test_the_committed_numbers_are_what_the_libraries_answer(name: str) -> None:
    live = live_reference(CASES[name])
    committed = reference(name)
    assert set(live) == set(committed)
    for key, value in live.items():
        assert np.isclose(value, committed[key], rtol=1e-12, equal_nan=True), key


@pytest.mark.parity
def test_the_generator_reproduces_the_fixture() -> None:
    done = subprocess.run(
        [sys.executable, "scripts/gen_parity_fixtures.py", "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
