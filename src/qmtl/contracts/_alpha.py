"""The ``alpha_performance.<metric>`` namespace and its envelope (SPEC 2.4).

Producers fill the envelope with finite floats; readers go through :func:`parse_alpha_metrics`,
which keeps only the known keys with finite, non-boolean numeric values — so a newer
producer's extra metric, a ``NaN`` or a ``"1.2"`` never reaches a strategy.

The envelope's ``coverage`` says, per entry, how many periods the values were computed
from and which keys are the ``0.0`` default because they are undefined for that series —
so a row of zeros from "no data" is distinguishable from a series that happens to score 0.
It is optional: an older producer omits it and an older reader ignores it.
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
    "AlphaCoverage",
    "AlphaMetricsEnvelope",
    "MetricValues",
    "SeriesCoverage",
    "parse_alpha_metrics",
    "parse_coverage",
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


def _is_none(value: object) -> bool:
    return value is None


class SeriesCoverage(BaseModel):
    """What one entry's metrics were computed from.

    Attributes:
        observations: n, the periods used (missing entries dropped); 0 = no data.
        undefined: the metric keys reported as the ``0.0`` default because they are
            undefined for this series (all six when n = 0), in ``ALPHA_METRIC_KEYS`` order.
    """

    model_config = ConfigDict(extra="ignore")

    observations: int = Field(strict=True, ge=0)
    undefined: list[str] = Field(default_factory=list)


class AlphaCoverage(BaseModel):
    """``per_world`` {world: coverage} and ``per_strategy`` {strategy: {world: coverage}},
    one entry for every entry of the metrics."""

    model_config = ConfigDict(extra="ignore")

    per_world: dict[str, SeriesCoverage] = Field(default_factory=dict)
    per_strategy: dict[str, dict[str, SeriesCoverage]] = Field(default_factory=dict)


class AlphaMetricsEnvelope(BaseModel):
    """``per_world`` {world: metrics} and ``per_strategy`` {strategy: {world: metrics}}, plus
    ``coverage`` (omitted from the JSON when unknown, e.g. read from an older producer)."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    per_world: dict[str, MetricValues] = Field(default_factory=dict)
    per_strategy: dict[str, dict[str, MetricValues]] = Field(default_factory=dict)
    coverage: AlphaCoverage | None = Field(default=None, exclude_if=_is_none)


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


def _parse_series_coverage(value: Any) -> SeriesCoverage | None:
    if not isinstance(value, Mapping):
        return None
    observations = value.get("observations")
    if isinstance(observations, bool) or not isinstance(observations, int) or observations < 0:
        return None
    undefined = value.get("undefined")
    keys = undefined if isinstance(undefined, list) else []
    return SeriesCoverage(
        observations=observations,
        undefined=[key for key in keys if isinstance(key, str) and key in _KNOWN],
    )


def _parse_by_world(value: Any) -> dict[str, SeriesCoverage]:
    if not isinstance(value, Mapping):
        return {}
    parsed = {str(w): _parse_series_coverage(entry) for w, entry in value.items()}
    return {w: entry for w, entry in parsed.items() if entry is not None}


def parse_coverage(payload: Any) -> AlphaCoverage | None:
    """Read a ``coverage`` block tolerantly.

    An entry whose ``observations`` is not an integer >= 0 (booleans included) is dropped;
    unknown keys in ``undefined`` are dropped.

    Args:
        payload: the ``coverage`` value of an envelope (any JSON value).

    Returns:
        The parsed block, or ``None`` when ``payload`` is not a mapping (coverage unknown).
    """
    if not isinstance(payload, Mapping):
        return None
    per_strategy_raw = payload.get("per_strategy")
    per_strategy = (
        {
            str(s): _parse_by_world(worlds)
            for s, worlds in per_strategy_raw.items()
            if isinstance(worlds, Mapping)
        }
        if isinstance(per_strategy_raw, Mapping)
        else {}
    )
    return AlphaCoverage(
        per_world=_parse_by_world(payload.get("per_world")), per_strategy=per_strategy
    )


def parse_alpha_metrics(payload: Any) -> AlphaMetricsEnvelope | None:
    """Read an ``alpha_metrics`` envelope tolerantly.

    Args:
        payload: the ``alpha_metrics`` value of a response or event (any JSON value).

    Returns:
        The sanitized envelope, or ``None`` when ``payload`` is not a mapping (absent
        metrics are never reported as zeros). Its ``coverage`` is ``None`` when the
        payload has none (an older producer).
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
    return AlphaMetricsEnvelope(
        per_world=per_world,
        per_strategy=per_strategy,
        coverage=parse_coverage(payload.get("coverage")),
    )
