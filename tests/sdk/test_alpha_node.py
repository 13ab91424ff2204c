"""The streaming AlphaPerformance node and its Prometheus gauges."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry

from qmtl.contracts import ALPHA_METRIC_KEYS
from qmtl.sdk import AlphaInputError, AlphaPerformance, AlphaPerformanceGauges
from tests._parity import NODE_SERIES, reference

SERIES = NODE_SERIES


def test_first_values_match_an_independent_library() -> None:
    node = AlphaPerformance(window=10)
    metrics = node.extend(SERIES)
    lib = reference("sdk/node")  # empyrical-reloaded, committed by scripts/gen_parity_fixtures.py
    assert metrics["alpha_performance.sharpe"] == pytest.approx(lib["sharpe"])
    assert metrics["alpha_performance.max_drawdown"] == pytest.approx(lib["max_drawdown"])
    # 4 gains out of 7 non-zero periods.
    assert metrics["alpha_performance.win_ratio"] == pytest.approx(4 / 7)
    # gains 0.01+0.015+0.003+0.02 = 0.048; losses 0.02+0.007+0.01 = 0.037
    assert metrics["alpha_performance.profit_factor"] == pytest.approx(0.048 / 0.037)
    assert metrics["alpha_performance.car_mdd"] == pytest.approx(lib["car_mdd"])


def test_the_window_keeps_only_the_last_n_observations() -> None:
    node = AlphaPerformance(window=3)
    for r in SERIES:
        node.update(r)
    assert node.returns == tuple(SERIES[-3:])
    expected = AlphaPerformance(window=3)
    assert node.metrics == expected.extend(SERIES[-3:])


def test_missing_periods_are_not_stored() -> None:
    node = AlphaPerformance(window=5)
    node.update(0.01)
    before = node.metrics
    assert node.update(None) == before
    assert node.update(float("nan")) == before
    assert node.returns == (0.01,)
    assert node.missing == 2


def test_starts_at_all_zero() -> None:
    assert AlphaPerformance().metrics == dict.fromkeys(ALPHA_METRIC_KEYS, 0.0)


@pytest.mark.parametrize("bad", [math.inf, -math.inf, True, "0.1", [0.1]])
def test_bad_updates_are_refused_naming_the_field(bad: object) -> None:
    node = AlphaPerformance()
    with pytest.raises(AlphaInputError) as info:
        node.update(bad)
    assert info.value.field == "r"
    assert len(node) == 0


def test_extend_is_all_or_nothing() -> None:
    node = AlphaPerformance()
    with pytest.raises(AlphaInputError) as info:
        node.extend([0.01, 0.02, math.inf])
    assert info.value.field == "returns[2]"
    assert len(node) == 0


@pytest.mark.parametrize("window", [0, -1, 1.5, True])
def test_window_must_be_a_positive_integer(window: object) -> None:
    with pytest.raises(ValueError, match="window"):
        AlphaPerformance(window=window)  # type: ignore[arg-type]


def test_gauges_export_all_six_metrics_with_world_and_strategy_labels() -> None:
    registry = CollectorRegistry()
    gauges = AlphaPerformanceGauges(registry)
    metrics = AlphaPerformance().extend(SERIES)
    gauges.set(world_id="w1", strategy_id="s1", metrics=metrics)
    for key in ALPHA_METRIC_KEYS:
        name = key.replace(".", "_")
        value = registry.get_sample_value(name, {"world_id": "w1", "strategy_id": "s1"})
        assert value == pytest.approx(metrics[key]), name
