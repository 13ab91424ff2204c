"""returns_from_series and alpha_envelope: conversions by hand, coverage of worlds/strategies."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from qmtl.contracts import (
    ALPHA_METRIC_KEYS,
    MultiWorldRebalanceRequest,
    MultiWorldRebalanceResponse,
    RebalancePlan,
    Series,
    SeriesCoverage,
    parse_alpha_metrics,
    zero_metrics,
)
from qmtl.engine.alpha import (
    AlphaInputError,
    AlphaSeriesUnusable,
    alpha_envelope,
    alpha_performance,
    returns_from_series,
)

# --- returns_from_series ---------------------------------------------------------------------


def test_returns_are_used_as_given_with_null_as_nan() -> None:
    got = returns_from_series(Series(returns=[0.1, None, -0.05]), base_capital=None)
    np.testing.assert_array_equal(got, [0.1, np.nan, -0.05])


def test_equity_curve_by_hand() -> None:
    # 110/100 - 1 = 0.1; 99/110 - 1 = -0.1; 108.9/99 - 1 = 0.1
    got = returns_from_series(Series(equity=[100, 110, 99, 108.9]), base_capital=None)
    np.testing.assert_allclose(got, [0.1, -0.1, 0.1], rtol=1e-12)


def test_equity_gap_compounds_over_the_gap() -> None:
    # the missing 110 is dropped: one return 99/100 - 1 = -0.01 over two periods
    got = returns_from_series(Series(equity=[100, None, 99]), base_capital=None)
    np.testing.assert_allclose(got, [-0.01], rtol=1e-12)


def test_equity_falling_to_zero_is_ruin() -> None:
    got = returns_from_series(Series(equity=[100, 50, 0]), base_capital=None)
    np.testing.assert_allclose(got, [-0.5, -1.0], rtol=1e-12)


@pytest.mark.parametrize(
    ("equity", "loc"),
    [
        ([100, 0, 50], ("equity", 1)),  # return on zero capital
        ([100, -10, 5], ("equity", 1)),  # return on negative capital
        ([-100, -90], ("equity", 0)),
        ([0, 10], ("equity", 0)),
        ([100, None, 0, 5], ("equity", 2)),  # the index is the caller's, gaps included
        ([1e-300, 1e300], ("equity", 1)),  # the return does not fit in a float64
    ],
)
def test_unusable_equity_is_an_error_naming_the_element(
    equity: list[float | None], loc: tuple[str | int, ...]
) -> None:
    with pytest.raises(AlphaSeriesUnusable) as caught:
        returns_from_series(Series(equity=equity), base_capital=None)
    assert caught.value.loc == loc
    assert caught.value.field == f"{loc[0]}[{loc[1]}]"


@pytest.mark.parametrize("equity", [[100], [None, 100, None], []])
def test_equity_without_a_period_is_no_data(equity: list[float | None]) -> None:
    # fewer than two observations: no return, n = 0 (reported by coverage, not an error)
    assert returns_from_series(Series(equity=equity), base_capital=None).size == 0


def test_pnl_by_hand() -> None:
    # capital 100 -> r1 = 10/100 = 0.1; capital 110 -> r2 = -11/110 = -0.1;
    # capital 99 -> r3 = 9.9/99 = 0.1
    got = returns_from_series(Series(pnl=[10, -11, 9.9]), base_capital=100.0)
    np.testing.assert_allclose(got, [0.1, -0.1, 0.1], rtol=1e-12)


def test_pnl_missing_entries_are_skipped() -> None:
    # None is no observation: capital stays 110 for the -11
    got = returns_from_series(Series(pnl=[10, None, -11]), base_capital=100.0)
    np.testing.assert_allclose(got, [0.1, -0.1], rtol=1e-12)


def test_pnl_losing_everything_is_ruin() -> None:
    got = returns_from_series(Series(pnl=[-40, -60]), base_capital=100.0)
    # -40/100 = -0.4; -60/60 = -1
    np.testing.assert_allclose(got, [-0.4, -1.0], rtol=1e-12)


@pytest.mark.parametrize(
    ("pnl", "base", "loc"),
    [
        ([10.0], None, ("pnl",)),  # no base capital known
        ([10.0], 0.0, ("pnl",)),
        ([10.0], -5.0, ("pnl",)),
        ([-100.0, 10.0], 100.0, ("pnl", 1)),  # capital 0 at the start of period 2
        ([-150.0, None, 10.0], 100.0, ("pnl", 2)),  # negative capital
    ],
)
def test_unusable_pnl_is_an_error(
    pnl: list[float | None], base: float | None, loc: tuple[str | int, ...]
) -> None:
    with pytest.raises(AlphaSeriesUnusable) as caught:
        returns_from_series(Series(pnl=pnl), base_capital=base, capital_label="B")
    assert caught.value.loc == loc
    assert "B" in str(caught.value)


@pytest.mark.parametrize("base", [None, 0.0, 100.0])
@pytest.mark.parametrize("pnl", [[None], []])
def test_pnl_without_observations_is_no_data(pnl: list[float | None], base: float | None) -> None:
    assert returns_from_series(Series(pnl=pnl), base_capital=base).size == 0


def test_field_precedence_is_returns_then_equity_then_pnl() -> None:
    everything = Series(returns=[0.5], equity=[100, 90], pnl=[1.0])
    np.testing.assert_array_equal(returns_from_series(everything, base_capital=10.0), [0.5])
    no_returns = Series(equity=[100, 90], pnl=[1.0])
    np.testing.assert_allclose(returns_from_series(no_returns, base_capital=10.0), [-0.1])


def test_empty_series_is_no_data() -> None:
    assert returns_from_series(Series(), base_capital=100.0).size == 0


def test_series_input_is_not_mutated() -> None:
    series = Series(equity=[100, None, 110], pnl=[1.0])
    before = series.model_dump()
    returns_from_series(series, base_capital=5.0)
    assert series.model_dump() == before


# --- alpha_envelope --------------------------------------------------------------------------

W1_RETURNS = [0.01, -0.02, 0.015, 0.0, 0.03, -0.01]


def _request(**overrides: Any) -> MultiWorldRebalanceRequest:
    body: dict[str, Any] = {
        "total_equity": 1000.0,
        "world_alloc_before": {"w1": 0.1, "w2": 0.3},
        "world_alloc_after": {"w1": 0.2, "w2": 0.3},
        "strategy_alloc_before_total": {"w1": {"s1": 0.04}},
        "alpha_series": {
            "per_world": {
                "w1": {"returns": W1_RETURNS},
                "w2": {"pnl": [30, -33, 16.5]},
                "w_outside": {"returns": [0.5, -0.5]},
            },
            "per_strategy": {
                "s1": {"w1": {"equity": [40, 44, 39.6, 41.58]}},
                "s2": {"w1": {"pnl": [5, -2.1]}},
                "s9": {"w_outside": {"returns": [0.1, -0.1]}},
            },
        },
    }
    body.update(overrides)
    return MultiWorldRebalanceRequest.model_validate(body)


def _response() -> MultiWorldRebalanceResponse:
    return MultiWorldRebalanceResponse(
        schema_version=2,
        per_world={
            "w1": RebalancePlan(
                world_id="w1", scale_world=2.0, scale_by_strategy={"s1": 2.0, "s3": 2.0}
            ),
            "w2": RebalancePlan(world_id="w2", scale_world=1.0, scale_by_strategy={"s4": 1.0}),
            "w3": RebalancePlan(world_id="w3", scale_world=0.0),
        },
    )


def test_every_world_and_strategy_of_the_plan_has_an_entry() -> None:
    envelope = alpha_envelope(_request(), _response())
    assert set(envelope.per_world) == {"w1", "w2", "w3"}  # w_outside is not in the plan
    assert {s: set(w) for s, w in envelope.per_strategy.items()} == {
        "s1": {"w1"},
        "s2": {"w1"},  # named only by alpha_series, for a planned world
        "s3": {"w1"},  # in the plan, no data
        "s4": {"w2"},
    }
    for metrics in [*envelope.per_world.values()] + [
        m for by_world in envelope.per_strategy.values() for m in by_world.values()
    ]:
        assert tuple(metrics) == ALPHA_METRIC_KEYS
        assert all(math.isfinite(v) for v in metrics.values())


def test_entries_without_data_are_zeros() -> None:
    envelope = alpha_envelope(_request(), _response())
    assert envelope.per_world["w3"] == zero_metrics()
    assert envelope.per_strategy["s3"]["w1"] == zero_metrics()
    assert envelope.per_strategy["s4"]["w2"] == zero_metrics()


def test_no_alpha_series_gives_zeros_everywhere() -> None:
    envelope = alpha_envelope(_request(alpha_series=None), _response())
    assert envelope.per_world == {w: zero_metrics() for w in ("w1", "w2", "w3")}
    assert envelope.per_strategy == {
        "s1": {"w1": zero_metrics()},
        "s3": {"w1": zero_metrics()},
        "s4": {"w2": zero_metrics()},
    }


def test_world_returns_match_alpha_performance_and_plain_numpy() -> None:
    envelope = alpha_envelope(_request(), _response())
    assert envelope.per_world["w1"] == alpha_performance(W1_RETURNS)
    x = np.array(W1_RETURNS)
    sharpe = x.mean() / x.std(ddof=1) * math.sqrt(252)
    assert math.isclose(envelope.per_world["w1"]["alpha_performance.sharpe"], sharpe, rel_tol=1e-12)
    # 3 wins of 5 non-zero periods
    assert envelope.per_world["w1"]["alpha_performance.win_ratio"] == pytest.approx(3 / 5)


def test_world_pnl_uses_the_world_capital_before() -> None:
    # B = 1000 * 0.3 = 300: 30/300 = 0.1; -33/330 = -0.1; 16.5/297 = 0.0555...
    envelope = alpha_envelope(_request(), _response())
    expected = alpha_performance([0.1, -0.1, 16.5 / 297])
    assert envelope.per_world["w2"] == pytest.approx(expected, rel=1e-12)
    # (0.1 + 0.0555...) / 0.1
    assert envelope.per_world["w2"]["alpha_performance.profit_factor"] == pytest.approx(
        (0.1 + 16.5 / 297) / 0.1
    )


def test_strategy_equity_curve() -> None:
    # 44/40 - 1 = 0.1; 39.6/44 - 1 = -0.1; 41.58/39.6 - 1 = 0.05
    envelope = alpha_envelope(_request(), _response())
    assert envelope.per_strategy["s1"]["w1"] == pytest.approx(
        alpha_performance([0.1, -0.1, 0.05]), rel=1e-12
    )
    assert envelope.per_strategy["s1"]["w1"]["alpha_performance.max_drawdown"] == pytest.approx(
        -0.1
    )


def test_strategy_pnl_falls_back_to_the_world_capital() -> None:
    # s2 has no strategy_alloc_before_total entry: B = world w1's 1000 * 0.1 = 100
    # 5/100 = 0.05; -2.1/105 = -0.02
    envelope = alpha_envelope(_request(), _response())
    assert envelope.per_strategy["s2"]["w1"] == pytest.approx(
        alpha_performance([0.05, -0.02]), rel=1e-12
    )


def test_strategy_pnl_uses_its_own_capital_when_given() -> None:
    # s1 in w1: B = 1000 * 0.04 = 40 -> 4/40 = 0.1; -2.2/44 = -0.05
    request = _request(
        alpha_series={"per_strategy": {"s1": {"w1": {"pnl": [4, -2.2]}}}},
    )
    envelope = alpha_envelope(request, _response())
    assert envelope.per_strategy["s1"]["w1"] == pytest.approx(
        alpha_performance([0.1, -0.05]), rel=1e-12
    )


@pytest.mark.parametrize(
    ("alpha_series", "loc"),
    [
        # w3 is not in world_alloc_before: B = 1000 × 0 = 0, P&L cannot become returns
        ({"per_world": {"w3": {"pnl": [1.0, -2.0]}}}, ("alpha_series", "per_world", "w3", "pnl")),
        # s3 falls back to w1's B = 100; 100 - 100 = 0 before the second period
        (
            {"per_strategy": {"s3": {"w1": {"pnl": [-100.0, 5.0]}}}},
            ("alpha_series", "per_strategy", "s3", "w1", "pnl", 1),
        ),
        (
            {"per_strategy": {"s1": {"w1": {"equity": [40.0, 0.0, 3.0]}}}},
            ("alpha_series", "per_strategy", "s1", "w1", "equity", 1),
        ),
    ],
)
def test_unusable_series_is_an_error_located_in_the_request(
    alpha_series: dict[str, Any], loc: tuple[str | int, ...]
) -> None:
    with pytest.raises(AlphaSeriesUnusable) as caught:
        alpha_envelope(_request(alpha_series=alpha_series), _response())
    assert caught.value.loc == loc


def test_no_capital_base_message_names_the_allocation() -> None:
    request = _request(alpha_series={"per_world": {"w3": {"pnl": [1.0]}}})
    with pytest.raises(AlphaSeriesUnusable) as caught:
        alpha_envelope(request, _response())
    assert caught.value.field == "alpha_series.per_world.w3.pnl"
    assert "world_alloc_before[w3]" in str(caught.value)


def test_strategy_with_zero_capital_names_its_own_allocation() -> None:
    request = _request(
        strategy_alloc_before_total={"w1": {"s1": 0.0}},
        alpha_series={"per_strategy": {"s1": {"w1": {"pnl": [1.0]}}}},
    )
    with pytest.raises(AlphaSeriesUnusable) as caught:
        alpha_envelope(request, _response())
    assert "strategy_alloc_before_total[w1][s1]" in str(caught.value)


def test_series_of_worlds_outside_the_plan_are_not_read() -> None:
    request = _request(alpha_series={"per_world": {"w_outside": {"pnl": [1.0]}}})
    assert alpha_envelope(request, _response()).per_world["w1"] == zero_metrics()


# --- coverage --------------------------------------------------------------------------------

ALL_UNDEFINED = list(ALPHA_METRIC_KEYS)
PF = "alpha_performance.profit_factor"
CAR = "alpha_performance.car_mdd"
RAR = "alpha_performance.rar_mdd"


def test_coverage_counts_observations_and_names_undefined_keys() -> None:
    request = _request(
        alpha_series={
            "per_world": {
                # 6 returns, 1 missing -> n = 5; has a loss: everything is defined
                "w1": {"returns": [0.01, None, -0.02, 0.015, 0.0, 0.03]},
                # 4 equity points, one missing -> 3 observations -> 2 returns,
                # both gains: no losing period -> profit_factor undefined, drawdown 0 ->
                # car_mdd and rar_mdd undefined
                "w2": {"equity": [100.0, 101.0, None, 103.0]},
            },
            "per_strategy": {
                # one pnl period: 5/100 = 0.05 -> n = 1 -> sharpe undefined (n < 2) too
                "s2": {"w1": {"pnl": [5.0]}},
            },
        }
    )
    coverage = alpha_envelope(request, _response()).coverage
    assert coverage is not None
    assert coverage.per_world["w1"] == SeriesCoverage(observations=5, undefined=[])
    assert coverage.per_world["w2"] == SeriesCoverage(observations=2, undefined=[PF, CAR, RAR])
    assert coverage.per_world["w3"] == SeriesCoverage(observations=0, undefined=ALL_UNDEFINED)
    assert coverage.per_strategy["s2"]["w1"] == SeriesCoverage(
        observations=1, undefined=["alpha_performance.sharpe", PF, CAR, RAR]
    )
    for strategy, world in (("s1", "w1"), ("s3", "w1"), ("s4", "w2")):
        assert coverage.per_strategy[strategy][world] == SeriesCoverage(
            observations=0, undefined=ALL_UNDEFINED
        )


def test_coverage_has_an_entry_for_every_metrics_entry() -> None:
    envelope = alpha_envelope(_request(), _response())
    assert envelope.coverage is not None
    assert set(envelope.coverage.per_world) == set(envelope.per_world)
    assert {s: set(w) for s, w in envelope.coverage.per_strategy.items()} == {
        s: set(w) for s, w in envelope.per_strategy.items()
    }


def test_zeros_with_data_are_told_apart_from_no_data() -> None:
    # A flat series scores 0.0 everywhere, like "no data" - coverage tells them apart.
    request = _request(alpha_series={"per_world": {"w1": {"returns": [0.0, 0.0, 0.0]}}})
    envelope = alpha_envelope(request, _response())
    assert envelope.per_world["w1"] == envelope.per_world["w3"] == zero_metrics()
    assert envelope.coverage is not None
    assert envelope.coverage.per_world["w1"].observations == 3
    assert envelope.coverage.per_world["w3"].observations == 0


def test_periods_per_year_is_passed_through() -> None:
    envelope = alpha_envelope(_request(), _response(), periods_per_year=12)
    assert envelope.per_world["w1"] == alpha_performance(W1_RETURNS, periods_per_year=12)


def test_invalid_periods_per_year_is_rejected() -> None:
    with pytest.raises(AlphaInputError) as caught:
        alpha_envelope(_request(), _response(), periods_per_year=0)
    assert caught.value.field == "periods_per_year"


def test_envelope_survives_the_wire() -> None:
    envelope = alpha_envelope(_request(), _response())
    parsed = parse_alpha_metrics(envelope.model_dump(mode="json"))
    assert parsed == envelope


def test_empty_plan_gives_an_empty_envelope() -> None:
    envelope = alpha_envelope(_request(), MultiWorldRebalanceResponse(schema_version=2))
    assert envelope.per_world == {}
    assert envelope.per_strategy == {}
