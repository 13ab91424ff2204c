"""alpha_performance: hand-computed values, undefined cases and input validation (SPEC 2.4)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from qmtl.contracts import ALPHA_METRIC_KEYS
from qmtl.engine.alpha import (
    AlphaInputError,
    AlphaResult,
    alpha_performance,
    alpha_performance_detail,
)

SHARPE = "alpha_performance.sharpe"
MDD = "alpha_performance.max_drawdown"
WIN = "alpha_performance.win_ratio"
PF = "alpha_performance.profit_factor"
CAR = "alpha_performance.car_mdd"
RAR = "alpha_performance.rar_mdd"


def approx(value: float) -> object:
    return pytest.approx(value, rel=1e-12, abs=1e-15)


# --- hand-computed values -------------------------------------------------------------------


def test_three_period_series_by_hand() -> None:
    result = alpha_performance_detail([0.1, -0.05, 0.02])
    m = result.metrics
    # mean = 0.07/3 = 7/300; deviations 23/300, -22/300, -1/300;
    # sum of squares = (529 + 484 + 1)/300^2 = 1014/90000; var (ddof 1) = 507/90000;
    # std = sqrt(507)/300  ->  mean/std = 7/sqrt(507); sharpe = 7*sqrt(252/507) = 4.93508...
    assert m[SHARPE] == approx(7 * math.sqrt(252 / 507))
    assert m[SHARPE] == pytest.approx(4.935081517, rel=1e-9)
    # W = 1.1, 1.1*0.95 = 1.045, 1.045*1.02 = 1.0659; peak 1.1 -> 1.045/1.1 - 1 = -0.05
    assert m[MDD] == approx(-0.05)
    # two of three periods win
    assert m[WIN] == approx(2 / 3)
    # (0.1 + 0.02) / 0.05 = 2.4
    assert m[PF] == approx(2.4)
    # CAGR = 1.0659^(252/3) - 1 = 1.0659^84 - 1 = 211.90...; / 0.05
    cagr = 1.0659**84 - 1
    assert cagr == pytest.approx(211.9035, rel=1e-5)
    assert m[CAR] == approx(cagr / 0.05)
    # exposure = 3/3 = 1 -> rar_mdd = car_mdd
    assert m[RAR] == approx(cagr / 0.05)
    assert result.observations == 3
    assert result.undefined == ()


def test_flat_periods_reduce_exposure() -> None:
    m = alpha_performance([0.05, 0.0, -0.02, 0.0, 0.01])
    # mean = 0.04/5 = 0.008; deviations .042, -.008, -.028, -.008, .002
    # squares .001764 + .000064 + .000784 + .000064 + .000004 = .00268; var = .00268/4 = .00067
    assert m[SHARPE] == approx(0.008 / math.sqrt(0.00067) * math.sqrt(252))
    # W = 1.05, 1.05, 1.029, 1.029, 1.03929; peak 1.05 -> 1.029/1.05 - 1 = -0.02
    assert m[MDD] == approx(-0.02)
    # zeros are neither wins nor losses: 2 wins / 3 non-zero
    assert m[WIN] == approx(2 / 3)
    # (0.05 + 0.01) / 0.02 = 3
    assert m[PF] == approx(3.0)
    cagr = 1.03929 ** (252 / 5) - 1
    assert m[CAR] == approx(cagr / 0.02)
    # exposure = 3/5 = 0.6
    assert m[RAR] == approx(cagr / 0.6 / 0.02)


def test_risk_free_and_transaction_cost_by_hand() -> None:
    m = alpha_performance([0.012, -0.004, 0.006], risk_free=0.001, transaction_cost=0.002)
    # x = r - tc = 0.010, -0.006, 0.004; x - rf = 0.009, -0.007, 0.003
    # mean = 0.005/3; deviations (in 1/3000) 22, -26, 4; squares 484 + 676 + 16 = 1176
    # var = 1176/2 / 3000^2 -> std = sqrt(588)/3000; mean/std = 5/sqrt(588)
    assert m[SHARPE] == approx(5 * math.sqrt(252 / 588))
    # wins/losses and the wealth use x, not x - rf
    assert m[WIN] == approx(2 / 3)
    assert m[PF] == approx((0.010 + 0.004) / 0.006)
    # W = 1.01, 1.01*0.994 = 1.00394, *1.004 = 1.00795576; mdd = 0.994 - 1
    assert m[MDD] == approx(-0.006)
    cagr = 1.00795576**84 - 1
    assert m[CAR] == approx(cagr / 0.006)


def test_transaction_cost_turns_a_flat_period_into_a_loss() -> None:
    # x = 0 - 0.001 = -0.001 and 0.01 - 0.001 = 0.009: one win, one loss
    m = alpha_performance([0.0, 0.01], transaction_cost=0.001)
    assert m[WIN] == approx(0.5)
    assert m[PF] == approx(9.0)
    assert m[MDD] == approx(-0.001)


def test_periods_per_year_annualises() -> None:
    daily = alpha_performance([0.1, -0.05, 0.02])
    monthly = alpha_performance([0.1, -0.05, 0.02], periods_per_year=12)
    assert monthly[SHARPE] == approx(daily[SHARPE] * math.sqrt(12 / 252))
    # CAGR = 1.0659^(12/3) - 1
    assert monthly[CAR] == approx((1.0659**4 - 1) / 0.05)
    assert monthly[MDD] == daily[MDD]


def test_risk_free_only_changes_sharpe() -> None:
    base = alpha_performance([0.1, -0.05, 0.02])
    shifted = alpha_performance([0.1, -0.05, 0.02], risk_free=0.01)
    # x - rf = 0.09, -0.06, 0.01: mean 0.04/3, std unchanged (sqrt(507)/300)
    assert shifted[SHARPE] == approx(4 / math.sqrt(507) * math.sqrt(252))
    assert {k: v for k, v in shifted.items() if k != SHARPE} == {
        k: v for k, v in base.items() if k != SHARPE
    }


def test_drawdown_peak_includes_starting_wealth() -> None:
    # A first-period loss is a drawdown from W0 = 1: 0.97 - 1
    assert alpha_performance([-0.03, 0.05])[MDD] == approx(-0.03)


def test_deepest_of_several_drawdowns() -> None:
    # W: 1.2, 0.96 (dd -0.2), 1.44 (new peak), 1.008 (dd 1.008/1.44 - 1 = -0.3)
    assert alpha_performance([0.2, -0.2, 0.5, -0.3])[MDD] == approx(-0.3)


# --- ruin ------------------------------------------------------------------------------------


def test_total_loss_is_ruin() -> None:
    result = alpha_performance_detail([0.5, -1.0, 0.2])
    m = result.metrics
    # W = 1.5, 0, 0 -> drawdown -1; W_n = 0 -> CAGR = -1; car = -1/1; exposure 1
    assert m[MDD] == -1.0
    assert m[CAR] == -1.0
    assert m[RAR] == -1.0
    assert result.undefined == ()


def test_loss_beyond_capital_is_clamped_to_minus_one() -> None:
    # empyrical would report -1.5 here; SPEC bounds max_drawdown to [-1, 0]
    m = alpha_performance([0.1, -1.5, 0.3, 0.0])
    assert m[MDD] == -1.0
    assert m[CAR] == -1.0
    # exposure = 3/4 -> rar = (-1 / 0.75) / 1
    assert m[RAR] == approx(-1 / 0.75)
    # win/profit factor still read the periods: (0.1 + 0.3) / 1.5
    assert m[PF] == approx(0.4 / 1.5)


def test_ruin_in_the_first_period() -> None:
    m = alpha_performance([-1.0])
    assert m[MDD] == -1.0
    assert m[CAR] == -1.0


# --- undefined cases -------------------------------------------------------------------------


@pytest.mark.parametrize("returns", [[], [None], [float("nan"), None], np.array([np.nan])])
def test_no_observation_is_all_undefined(returns: list[float | None]) -> None:
    result = alpha_performance_detail(returns)
    assert result.metrics == dict.fromkeys(ALPHA_METRIC_KEYS, 0.0)
    assert result.undefined == ALPHA_METRIC_KEYS
    assert result.observations == 0


def test_single_gain() -> None:
    result = alpha_performance_detail([0.05])
    # sharpe needs n >= 2; no loss -> no profit factor, no drawdown -> no car/rar
    assert result.undefined == (SHARPE, PF, CAR, RAR)
    assert result.metrics[WIN] == 1.0
    assert result.metrics[MDD] == 0.0
    assert result.metrics[SHARPE] == 0.0


def test_single_loss() -> None:
    result = alpha_performance_detail([-0.05])
    m = result.metrics
    assert result.undefined == (SHARPE,)
    assert m[MDD] == approx(-0.05)
    assert m[WIN] == 0.0
    # a loss and no gain: 0 / 0.05 = 0 (defined)
    assert m[PF] == 0.0
    # CAGR = 0.95^252 - 1
    assert m[CAR] == approx((0.95**252 - 1) / 0.05)


def test_all_zero_returns() -> None:
    result = alpha_performance_detail([0.0, 0.0, 0.0])
    assert result.undefined == (SHARPE, WIN, PF, CAR, RAR)
    assert result.metrics == dict.fromkeys(ALPHA_METRIC_KEYS, 0.0)
    assert result.observations == 3


def test_no_losing_period() -> None:
    result = alpha_performance_detail([0.01, 0.02, 0.0])
    assert result.undefined == (PF, CAR, RAR)
    assert result.metrics[WIN] == 1.0
    # mean 0.01, deviations 0, .01, -.01 -> var = .0002/2 = .0001, std .01 -> sqrt(252)
    assert result.metrics[SHARPE] == approx(math.sqrt(252))


@pytest.mark.parametrize(
    "returns",
    [[0.01] * 50, [0.1] * 3, [-0.003] * 1000, [1e-9] * 7, [0.07] * 100_000],
)
def test_constant_series_has_no_sharpe(returns: list[float]) -> None:
    # the float mean of equal values can differ from them by an ulp; that is not a std
    result = alpha_performance_detail(returns)
    assert SHARPE in result.undefined
    assert result.metrics[SHARPE] == 0.0


def test_constant_series_with_risk_free_has_no_sharpe() -> None:
    result = alpha_performance_detail([0.01] * 50, risk_free=0.0003, transaction_cost=0.0001)
    assert result.metrics[SHARPE] == 0.0
    assert SHARPE in result.undefined


def test_growth_beyond_float_range_is_undefined() -> None:
    # CAGR = 10^(252/2) - 1 = 1e126... fine; 1e6^(252*1e6/2) overflows: reported as 0.0
    result = alpha_performance_detail([1e6, -0.5], periods_per_year=1e6)
    assert CAR in result.undefined and RAR in result.undefined
    assert result.metrics[CAR] == 0.0
    assert result.metrics[MDD] == approx(-0.5)


def test_huge_but_finite_returns_stay_finite() -> None:
    result = alpha_performance_detail([1e308, -1e308, 1.5e308, 1e-320])
    assert all(math.isfinite(v) for v in result.metrics.values())
    # gains 2.5e308 overflow a float64: undefined, not inf
    assert PF in result.undefined


# --- shape of the result ---------------------------------------------------------------------


def test_result_has_exactly_the_contract_keys_as_python_floats() -> None:
    m = alpha_performance(np.array([0.01, -0.02, 0.03]))
    assert tuple(m) == ALPHA_METRIC_KEYS
    assert all(type(v) is float for v in m.values())


def test_detail_is_frozen() -> None:
    result = alpha_performance_detail([0.01, -0.02])
    assert isinstance(result, AlphaResult)
    with pytest.raises(AttributeError):
        result.observations = 5  # type: ignore[misc]


# --- input forms and missing values ----------------------------------------------------------


def test_nan_and_none_are_dropped_and_not_counted() -> None:
    dense = alpha_performance_detail([0.1, -0.05, 0.02])
    gappy = alpha_performance_detail([None, 0.1, float("nan"), -0.05, None, 0.02, np.nan])
    assert gappy.metrics == dense.metrics
    assert gappy.observations == 3


@pytest.mark.parametrize(
    "returns",
    [
        (0.1, -0.05, 0.02),
        (v for v in [0.1, -0.05, 0.02]),
        np.array([0.1, -0.05, 0.02]),
        np.array([0.1, -0.05, 0.02], dtype=object),
        np.array([0.1, None, -0.05, 0.02], dtype=object),
        [np.float64(0.1), -0.05, np.float64(0.02)],
    ],
)
def test_accepted_input_forms(returns: object) -> None:
    assert alpha_performance(returns) == alpha_performance([0.1, -0.05, 0.02])  # type: ignore[arg-type]


def test_integer_and_float32_arrays() -> None:
    assert alpha_performance(np.array([1, -1, 0])) == alpha_performance([1.0, -1.0, 0.0])
    mixed: list[Any] = [np.int64(1), -1, np.uint8(0)]
    assert alpha_performance(mixed) == alpha_performance([1.0, -1.0, 0.0])
    f32 = np.array([0.1, -0.05], dtype=np.float32)
    assert alpha_performance(f32) == alpha_performance(f32.astype(np.float64).tolist())


@pytest.mark.parity  # pandas is in the opt-in parity group
def test_pandas_series_is_accepted() -> None:
    import pandas as pd  # type: ignore[import-untyped]

    series = pd.Series([0.1, np.nan, -0.05, 0.02])
    assert alpha_performance(series) == alpha_performance([0.1, -0.05, 0.02])


def test_read_only_input_is_not_mutated() -> None:
    returns = np.array([0.1, np.nan, -0.05, 0.02])
    returns.setflags(write=False)
    before = returns.copy()
    alpha_performance(returns, risk_free=0.001, transaction_cost=0.002)
    np.testing.assert_array_equal(returns, before)


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("returns", "field"),
    [
        ([0.1, float("inf")], "returns[1]"),
        ([float("-inf"), 0.1], "returns[0]"),
        (np.array([0.1, 0.2, np.inf]), "returns[2]"),
        ([0.1, True], "returns[1]"),
        ([False], "returns[0]"),
        ([np.bool_(True), 0.1], "returns[0]"),
        (np.array([True, False]), "returns"),
        ([0.1, "0.2"], "returns[1]"),
        (np.array(["0.1"]), "returns"),
        ([0.1, [0.2]], "returns[1]"),
        ([0.1, 10**400], "returns[1]"),
        ([0.1, 1j], "returns[1]"),
        (np.array([[0.1, 0.2]]), "returns"),
        (0.1, "returns"),
        ("0.1", "returns"),
        ({"a": 0.1}, "returns"),
        ({0.1, 0.2}, "returns"),
    ],
)
def test_bad_returns_name_the_field(returns: object, field: str) -> None:
    with pytest.raises(AlphaInputError) as caught:
        alpha_performance(returns)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert field.split("[")[0] in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_inf_message_names_the_index() -> None:
    with pytest.raises(AlphaInputError, match=r"returns\[1\] is inf"):
        alpha_performance([0.1, float("inf")])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"periods_per_year": 0}, "periods_per_year"),
        ({"periods_per_year": -12}, "periods_per_year"),
        ({"periods_per_year": float("nan")}, "periods_per_year"),
        ({"periods_per_year": float("inf")}, "periods_per_year"),
        ({"periods_per_year": True}, "periods_per_year"),
        ({"periods_per_year": "252"}, "periods_per_year"),
        ({"risk_free": float("nan")}, "risk_free"),
        ({"risk_free": float("-inf")}, "risk_free"),
        ({"risk_free": False}, "risk_free"),
        ({"risk_free": None}, "risk_free"),
        ({"transaction_cost": float("inf")}, "transaction_cost"),
        ({"transaction_cost": "0.001"}, "transaction_cost"),
        ({"transaction_cost": 10**400}, "transaction_cost"),
    ],
)
def test_bad_parameters_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(AlphaInputError) as caught:
        alpha_performance([0.1, -0.05], **kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert field in str(caught.value)


def test_parameters_are_checked_even_without_data() -> None:
    with pytest.raises(AlphaInputError):
        alpha_performance([], periods_per_year=0)


def test_overflowing_transaction_cost_is_an_input_error() -> None:
    with pytest.raises(AlphaInputError) as caught:
        alpha_performance([1.7e308, 0.1], transaction_cost=-1e308)
    assert caught.value.field == "transaction_cost"


def test_overflowing_risk_free_is_an_input_error() -> None:
    with pytest.raises(AlphaInputError) as caught:
        alpha_performance([-1.7e308, 0.1], risk_free=1e308)
    assert caught.value.field == "risk_free"
