"""The ``alpha_performance.<metric>`` namespace and its envelope (SPEC 2.4).

Producers fill the envelope with finite floats; readers go through :func:`parse_alpha_metrics`,
which keeps only the known keys with finite, non-boolean numeric values — so a newer
producer's extra metric, a ``NaN`` or a ``"1.2"`` never reaches a strategy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ALPHA_METRIC_KEYS",
    "ALPHA_METRIC_NAMES",
    "ALPHA_PREFIX",
    "AlphaMetricsEnvelope",
    "MetricValues",
    "parse_alpha_metrics",
    "sanitize_metrics",
    "zero_metrics",
]

ALPHA_PREFIX = "alpha_performance."
ALPHA_METRIC_NAMES: tuple[str, ...] = (
    "sharpe",
    "max_drawdown",
    "win_ratio",
    "profit_factor",
    "car_mdd",
    "rar_mdd",
)
ALPHA_METRIC_KEYS: tuple[str, ...] = tuple(ALPHA_PREFIX + name for name in ALPHA_METRIC_NAMES)
_KNOWN = frozenset(ALPHA_METRIC_KEYS)

MetricValues = dict[str, float]
"""``{"alpha_performance.sharpe": 1.2, ...}``"""


class AlphaMetricsEnvelope(BaseModel):
    """``per_world`` {world: metrics} and ``per_strategy`` {strategy: {world: metrics}}."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    per_world: dict[str, MetricValues] = Field(default_factory=dict)
    per_strategy: dict[str, dict[str, MetricValues]] = Field(default_factory=dict)


def zero_metrics() -> MetricValues:
    """Every known key at ``0.0`` — the value reported when there is no raw data."""
    return dict.fromkeys(ALPHA_METRIC_KEYS, 0.0)


def _is_number(value: Any) -> bool:
    # bool is a subclass of int; it is not a metric value.
    return isinstance(value, int | float) and not isinstance(value, bool)


def sanitize_metrics(values: Any) -> MetricValues:
    """Keep the known keys whose values are finite numbers; drop everything else.

    Args:
        values: any JSON value; anything but a mapping gives ``{}``.

    Returns:
        A new dict of known keys to finite floats.
    """
    if not isinstance(values, Mapping):
        return {}
    return {
        key: float(value)
        for key, value in values.items()
        if key in _KNOWN and _is_number(value) and _fits_finite_float(value)
    }


def _fits_finite_float(value: int | float) -> bool:
    # An integer beyond float64 (a 400-digit JSON literal) is not a finite float either.
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def parse_alpha_metrics(payload: Any) -> AlphaMetricsEnvelope | None:
    """Read an ``alpha_metrics`` envelope tolerantly.

    Args:
        payload: the ``alpha_metrics`` value of a response or event (any JSON value).

    Returns:
        The sanitized envelope, or ``None`` when ``payload`` is not a mapping (absent
        metrics are never reported as zeros).
    """
    if not isinstance(payload, Mapping):
        return None
    per_world_raw = payload.get("per_world")
    per_strategy_raw = payload.get("per_strategy")
    per_world = (
        {str(w): sanitize_metrics(v) for w, v in per_world_raw.items()}
        if isinstance(per_world_raw, Mapping)
        else {}
    )
    per_strategy: dict[str, dict[str, MetricValues]] = {}
    if isinstance(per_strategy_raw, Mapping):
        for strategy, worlds in per_strategy_raw.items():
            if isinstance(worlds, Mapping):
                per_strategy[str(strategy)] = {
                    str(w): sanitize_metrics(v) for w, v in worlds.items()
                }
    return AlphaMetricsEnvelope(per_world=per_world, per_strategy=per_strategy)
