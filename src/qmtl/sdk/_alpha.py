"""Streaming ``alpha_performance`` node and its Prometheus gauges (SPEC 2.4).

:class:`AlphaPerformance` keeps the last ``window`` observed per-period returns of one
strategy in one world and recomputes the six metrics with
:func:`qmtl.engine.alpha.alpha_performance_detail` — the same function the WorldService uses,
so the SDK's numbers and the plan's ``alpha_metrics`` agree on the same series; its
``undefined`` names the metrics reported as 0.0 because they are undefined. Cost per update:
O(window).

:class:`AlphaPerformanceGauges` exports every metric as a gauge
``alpha_performance_<metric>{world_id, strategy_id}`` on an injected registry.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Gauge

from qmtl.contracts import ALPHA_METRIC_KEYS, ALPHA_PREFIX, zero_metrics
from qmtl.engine.alpha import DEFAULT_PERIODS_PER_YEAR, alpha_performance_detail
from qmtl.engine.alpha_input import AlphaInputError, check_finite, check_periods_per_year

__all__ = [
    "DEFAULT_WINDOW",
    "METRIC_UNITS",
    "AlphaInputError",
    "AlphaPerformance",
    "AlphaPerformanceGauges",
    "gauge_name",
]

DEFAULT_WINDOW = 252
"""Returns kept by default: one year of trading days."""

METRIC_UNITS: dict[str, str] = {
    ALPHA_PREFIX + "sharpe": "annualised ratio: mean/std of per-period excess returns × √P",
    ALPHA_PREFIX + "max_drawdown": "fraction of peak wealth, in [−1, 0] (−0.25 = −25 %)",
    ALPHA_PREFIX + "win_ratio": "fraction of non-zero periods that gained, in [0, 1]",
    ALPHA_PREFIX + "profit_factor": "gross gains / gross losses (ratio, ≥ 0)",
    ALPHA_PREFIX + "car_mdd": "CAGR (per year) / |max_drawdown| (ratio)",
    ALPHA_PREFIX + "rar_mdd": "(CAGR / exposure) / |max_drawdown| (ratio)",
}
"""The unit of every ``alpha_performance.<metric>`` (P = periods per year)."""


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float | np.floating) and math.isnan(value))


def gauge_name(key: str) -> str:
    """``alpha_performance.sharpe`` → ``alpha_performance_sharpe`` (Prometheus name)."""
    return key.replace(".", "_")


class AlphaPerformance:
    """Rolling-window alpha metrics of one return stream.

    Args:
        window: how many observed returns are kept (≥ 1); older ones fall out.
        periods_per_year: P, e.g. 252 for daily returns.
        risk_free: rf, per period.
        transaction_cost: tc, per period.

    Raises:
        ValueError: ``window`` is not an integer ≥ 1.
        AlphaInputError: P, rf or tc is invalid (the message names the argument).
    """

    def __init__(self, *, window: int = DEFAULT_WINDOW,
                 periods_per_year: float = DEFAULT_PERIODS_PER_YEAR,
                 risk_free: float = 0.0, transaction_cost: float = 0.0) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be an integer >= 1, got {window!r}")
        self.window = window
        self.periods_per_year = check_periods_per_year(periods_per_year)
        self.risk_free = check_finite("risk_free", risk_free)
        self.transaction_cost = check_finite("transaction_cost", transaction_cost)
        self._returns: deque[float] = deque(maxlen=window)
        self._metrics = zero_metrics()
        self._undefined: tuple[str, ...] = ALPHA_METRIC_KEYS
        self.missing = 0
        """Updates that carried no observation (``None`` or NaN)."""

    @property
    def returns(self) -> tuple[float, ...]:
        """The observed returns in the window, oldest first."""
        return tuple(self._returns)

    @property
    def metrics(self) -> dict[str, float]:
        """The six metrics of the current window (all 0.0 before the first observation)."""
        return dict(self._metrics)

    @property
    def undefined(self) -> tuple[str, ...]:
        """The keys of :attr:`metrics` that are ``0.0`` because they are undefined for the
        current window (e.g. profit factor without a losing period; all six before the first
        observation), in ``ALPHA_METRIC_KEYS`` order."""
        return self._undefined

    def __len__(self) -> int:
        return len(self._returns)

    def update(self, r: Any) -> dict[str, float]:
        """Add one period's simple return and recompute.

        ``None`` or NaN is a missing period: nothing is stored (the engine drops NaN, so the
        window holds the last ``window`` *observed* returns) and the metrics stay as they were.

        Args:
            r: the return as a ratio (0.01 = +1 %).

        Returns:
            The six metrics after the update.

        Raises:
            AlphaInputError: ``r`` is ±inf, a boolean, or not a number (field ``r``).
        """
        if _is_missing(r):
            self.missing += 1
            return self.metrics
        self._returns.append(check_finite("r", r))
        return self._recompute()

    def _recompute(self) -> dict[str, float]:
        detail = alpha_performance_detail(
            np.fromiter(self._returns, dtype=np.float64, count=len(self._returns)),
            periods_per_year=self.periods_per_year, risk_free=self.risk_free,
            transaction_cost=self.transaction_cost,
        )
        self._metrics = detail.metrics
        self._undefined = detail.undefined
        return self.metrics

    def extend(self, returns: Iterable[Any]) -> dict[str, float]:
        """:meth:`update` with every element of ``returns``, recomputing once at the end.

        Every element is validated before any is stored (all or nothing).

        Raises:
            AlphaInputError: an element is invalid (field ``returns[i]``).
        """
        observed: list[float] = []
        missing = 0
        for index, value in enumerate(returns):
            if _is_missing(value):
                missing += 1
            else:
                observed.append(check_finite(f"returns[{index}]", value))
        self.missing += missing
        if not observed:
            return self.metrics
        self._returns.extend(observed)
        return self._recompute()

    def __repr__(self) -> str:
        return f"AlphaPerformance(window={self.window}, observations={len(self)})"


class AlphaPerformanceGauges:
    """The six ``alpha_performance_<metric>{world_id, strategy_id}`` gauges on one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._gauges = {
            key: Gauge(gauge_name(key), f"{key}: {METRIC_UNITS[key]}",
                       ["world_id", "strategy_id"], registry=registry)
            for key in ALPHA_METRIC_KEYS
        }

    def set(self, *, world_id: str, strategy_id: str, metrics: dict[str, float]) -> None:
        """Export ``metrics`` for one (world, strategy)."""
        for key, gauge in self._gauges.items():
            gauge.labels(world_id=world_id, strategy_id=strategy_id).set(metrics[key])

