"""Alpha performance metrics and the ``alpha_metrics`` envelope (SPEC 2.4).

The SDK and the WorldService compute ``alpha_performance.<metric>`` with the same function,
:func:`alpha_performance`.

Notation (SPEC 2.4). r₁…rₙ are simple per-period returns (ratios: ``0.01`` = +1 %); NaN/None
entries are dropped and not counted, so n is the number of *observed* periods. P =
``periods_per_year``; rf = ``risk_free``, a return **per period** (not annual); tc =
``transaction_cost``, a return per period charged on every observed period; xₜ = rₜ − tc.
Wealth W₀ = 1, Wₜ = Πₛ≤ₜ (1 + xₛ), computed in log space (Σ log1p xₛ) so that a
1,000,000-period series neither overflows nor underflows. A period with xₜ <= −1 loses all
the capital: wealth is 0 from then on (**ruin**; a loss cannot exceed the capital, so the
sign flips of the raw product are not followed).

=============== ============================================= ===============================
key             definition                                    undefined → reported as 0.0
=============== ============================================= ===============================
sharpe          mean(x − rf) / std(x − rf, ddof=1) · √P       n < 2, or std <= 1e-12 ·
                                                              max|x − rf| (a constant series)
max_drawdown    minₜ (Wₜ / maxₛ≤ₜ Wₛ − 1), peak incl. W₀ = 1   n = 0
                → in [−1, 0]; −1 after ruin
win_ratio       #(x > 0) / #(x ≠ 0)                           no non-zero period
profit_factor   Σ positive x / |Σ negative x|                 no losing period
car_mdd         CAGR / |max_drawdown|,                        max_drawdown = 0 (incl. n = 0)
                CAGR = Wₙ^(P/n) − 1 = expm1(P/n · log Wₙ);
                CAGR = −1 when Wₙ <= 0 (ruin)
rar_mdd         (CAGR / exposure) / |max_drawdown|,           exposure = 0 or max_drawdown = 0
                exposure = #(x ≠ 0) / n
=============== ============================================= ===============================

A value that does not fit in a finite float64 is also reported as undefined (0.0): CAGR
when P/n · log Wₙ > ~709.78 (a growth beyond 1.8e308 per year), and a sum or ratio that
overflows (only with returns near ±1e308 or a drawdown near 1e-308). Every metric is thus
always a finite float.

These agree with empyrical-reloaded (``sharpe_ratio(x, risk_free=rf, annualization=P)``,
``max_drawdown(x)``, ``calmar_ratio(x, annualization=P)``) and quantstats
(``stats.win_rate(x)``, ``stats.profit_factor(x)``) on NaN-free series without ruin where
those are defined; empyrical counts NaN periods in n for CAGR and lets a drawdown pass −1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from qmtl.contracts import (
    ALPHA_METRIC_KEYS,
    ALPHA_PREFIX,
    AlphaCoverage,
    AlphaMetricsEnvelope,
    MetricValues,
    Series,
    SeriesCoverage,
)

from .alpha_input import (
    AlphaInputError,
    AlphaSeriesUnusable,
    ReturnsLike,
    as_return_array,
    check_finite,
    check_periods_per_year,
    returns_from_series,
)

if TYPE_CHECKING:
    from qmtl.contracts import MultiWorldRebalanceRequest, MultiWorldRebalanceResponse

__all__ = [
    "DEFAULT_PERIODS_PER_YEAR",
    "SHARPE_STD_RTOL",
    "AlphaInputError",
    "AlphaResult",
    "AlphaSeriesUnusable",
    "ReturnsLike",
    "alpha_envelope",
    "alpha_performance",
    "alpha_performance_detail",
    "returns_from_series",
]

FloatArray = npt.NDArray[np.float64]

DEFAULT_PERIODS_PER_YEAR = 252.0
"""Trading days per year: P when the caller does not say."""

SHARPE_STD_RTOL = 1e-12
"""The Sharpe ratio is undefined when std(x − rf) <= SHARPE_STD_RTOL · max|x − rf|.

A constant series has a sample std of a few ulps (the float mean differs from the values in
the last bit); dividing by it would report ~1e17 instead of "undefined".
"""

_DIRECT_SCALE_LOW = 1e-100
_DIRECT_SCALE_HIGH = 1e100

_SHARPE = ALPHA_PREFIX + "sharpe"
_MAX_DRAWDOWN = ALPHA_PREFIX + "max_drawdown"
_WIN_RATIO = ALPHA_PREFIX + "win_ratio"
_PROFIT_FACTOR = ALPHA_PREFIX + "profit_factor"
_CAR_MDD = ALPHA_PREFIX + "car_mdd"
_RAR_MDD = ALPHA_PREFIX + "rar_mdd"


@dataclass(frozen=True, slots=True)
class AlphaResult:
    """The six metrics plus what a report needs to explain them.

    Attributes:
        metrics: every key of ``ALPHA_METRIC_KEYS`` → a finite float.
        observations: n, the number of periods used (after dropping NaN/None).
        undefined: the keys reported as the 0.0 default because they are undefined for this
            series, in ``ALPHA_METRIC_KEYS`` order.
    """

    metrics: dict[str, float]
    observations: int
    undefined: tuple[str, ...]


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _sharpe(excess: FloatArray, *, periods_per_year: float) -> float | None:
    """mean(e) / std(e, ddof=1) · √P for e = x − rf; None when n < 2 or std ≈ 0.

    The ratio is scale-free: when max|e| is outside [1e-100, 1e100] the sums of squares
    could overflow or underflow, so e is divided by max|e| first. Cost: a few O(n) passes.
    """
    if excess.size < 2:
        return None
    scale = max(float(excess.max()), -float(excess.min()))  # max|e|
    if scale == 0.0:
        return None
    if not _DIRECT_SCALE_LOW < scale < _DIRECT_SCALE_HIGH:
        excess = excess / scale
        scale = 1.0
    std = float(excess.std(ddof=1))
    if std <= SHARPE_STD_RTOL * scale:
        return None
    return _finite(float(excess.mean()) / std * math.sqrt(periods_per_year))


def _drawdown_and_log_wealth(x: FloatArray) -> tuple[float, float]:
    """Return (max_drawdown, log Wₙ) for n >= 1; log Wₙ = −inf after ruin.

    log Wₜ = Σₛ≤ₜ log1p(xₛ); the depth dₜ = log Wₜ − max(0, maxₛ≤ₜ log Wₛ) (the 0 is W₀ = 1)
    = min(log Wₜ − maxₛ≤ₜ log Wₛ, log Wₜ), and max_drawdown = expm1(minₜ dₜ) since expm1 is
    increasing. O(n) time, two n-sized buffers.
    """
    ruin_at = x.size
    if float(x.min()) <= -1.0:
        ruin_at = int(np.argmax(x <= -1.0))
        if ruin_at == 0:
            return -1.0, -math.inf
    log_wealth = np.log1p(x[:ruin_at])
    np.cumsum(log_wealth, out=log_wealth)
    below_peak = np.maximum.accumulate(log_wealth)
    np.subtract(log_wealth, below_peak, out=below_peak)
    depth = min(float(below_peak.min()), float(log_wealth.min()), 0.0)
    if ruin_at < x.size:
        return -1.0, -math.inf
    return float(np.expm1(depth)), float(log_wealth[-1])


def _cagr(log_final_wealth: float, *, observations: int, periods_per_year: float) -> float | None:
    """CAGR = Wₙ^(P/n) − 1 = expm1(P/n · log Wₙ); −1 after ruin; None when it overflows."""
    if log_final_wealth == -math.inf:
        return -1.0
    exponent = periods_per_year / observations * log_final_wealth
    with np.errstate(over="ignore"):
        return _finite(float(np.expm1(exponent)))


def _metrics(x: FloatArray, *, excess: FloatArray, periods_per_year: float) -> AlphaResult:
    n = int(x.size)
    values: dict[str, float | None] = dict.fromkeys(ALPHA_METRIC_KEYS)
    if n:
        values[_SHARPE] = _sharpe(excess, periods_per_year=periods_per_year)

        gains_mask = x > 0
        losses_mask = x < 0
        wins = int(np.count_nonzero(gains_mask))
        losses = int(np.count_nonzero(losses_mask))
        active = wins + losses
        if active:
            values[_WIN_RATIO] = wins / active
        if losses:
            # Clipping at 0 then summing is ~6x faster than a masked sum; the zeros
            # change no partial sum.
            with np.errstate(over="ignore"):
                clipped = np.maximum(x, 0.0)
                gains = float(clipped.sum())
                loss = -float(np.minimum(x, 0.0, out=clipped).sum())
            if math.isfinite(gains) and math.isfinite(loss):
                values[_PROFIT_FACTOR] = _finite(gains / loss)

        max_drawdown, log_final_wealth = _drawdown_and_log_wealth(x)
        values[_MAX_DRAWDOWN] = max_drawdown
        cagr = _cagr(log_final_wealth, observations=n, periods_per_year=periods_per_year)
        if max_drawdown < 0.0 and cagr is not None:
            values[_CAR_MDD] = _finite(cagr / -max_drawdown)
            # active > 0 here: a drawdown needs a losing period.
            values[_RAR_MDD] = _finite(cagr / (active / n) / -max_drawdown)

    undefined = tuple(key for key, value in values.items() if value is None)
    metrics = {key: 0.0 if value is None else float(value) for key, value in values.items()}
    return AlphaResult(metrics=metrics, observations=n, undefined=undefined)


def alpha_performance_detail(
    returns: ReturnsLike,
    *,
    periods_per_year: float = DEFAULT_PERIODS_PER_YEAR,
    risk_free: float = 0.0,
    transaction_cost: float = 0.0,
) -> AlphaResult:
    """Compute the six alpha metrics with the observation count and the undefined keys.

    See the module docstring for every formula, its units and its undefined cases.

    Args:
        returns: simple per-period returns r₁…rₙ as ratios; NaN/None = missing period.
            A numpy array, list, tuple, iterable or pandas Series; never mutated.
        periods_per_year: P > 0 (252 daily, 52 weekly, 12 monthly).
        risk_free: rf, the risk-free return per period (used by the Sharpe ratio only).
        transaction_cost: tc, a return per period subtracted from every observed rₜ.

    Returns:
        An :class:`AlphaResult`; every metric is a finite float. Cost O(n) time, a few
        n-sized temporaries.

    Raises:
        AlphaInputError: ±inf or a non-numeric element (booleans and strings included),
            an input that is not 1-D, P <= 0, a non-finite rf or tc, or r − tc − rf outside
            float64. The message names the field (``returns[i]``, ``periods_per_year``...).
    """
    periods = check_periods_per_year(periods_per_year)
    rf = check_finite("risk_free", risk_free)
    tc = check_finite("transaction_cost", transaction_cost)
    observed = as_return_array(returns)
    missing = np.isnan(observed)
    if missing.any():
        observed = observed[~missing]
    x = _shift(observed, tc, field="transaction_cost")
    excess = _shift(x, rf, field="risk_free")
    return _metrics(x, excess=excess, periods_per_year=periods)


def _shift(values: FloatArray, amount: float, *, field: str) -> FloatArray:
    # values − amount as a new array (the input is never modified in place).
    if amount == 0.0:
        return values
    with np.errstate(over="ignore"):
        shifted = values - amount
    # NaN is already dropped, so the extremes tell whether any entry overflowed.
    if shifted.size and not (
        math.isfinite(float(shifted.max())) and math.isfinite(float(shifted.min()))
    ):
        index = int(np.argmax(np.isinf(shifted)))
        raise AlphaInputError(f"returns[{index}] - {field} does not fit in a float64", field=field)
    return shifted


def alpha_performance(
    returns: ReturnsLike,
    *,
    periods_per_year: float = DEFAULT_PERIODS_PER_YEAR,
    risk_free: float = 0.0,
    transaction_cost: float = 0.0,
) -> dict[str, float]:
    """The six ``alpha_performance.<metric>`` values of a return series (SPEC 2.4).

    Same arguments, formulas and errors as :func:`alpha_performance_detail`.

    Returns:
        Exactly the keys of ``qmtl.contracts.ALPHA_METRIC_KEYS``, each a finite float
        (0.0 where undefined).
    """
    return alpha_performance_detail(
        returns,
        periods_per_year=periods_per_year,
        risk_free=risk_free,
        transaction_cost=transaction_cost,
    ).metrics


def _series_result(
    series: Series | None,
    *,
    base_capital: float,
    capital_label: str,
    periods_per_year: float,
    loc: tuple[str, ...],
) -> AlphaResult:
    if series is None:
        return AlphaResult(
            metrics=dict.fromkeys(ALPHA_METRIC_KEYS, 0.0),
            observations=0,
            undefined=ALPHA_METRIC_KEYS,
        )
    try:
        returns = returns_from_series(
            series, base_capital=base_capital, capital_label=capital_label
        )
    except AlphaSeriesUnusable as exc:
        raise exc.under(*loc) from exc
    return alpha_performance_detail(returns, periods_per_year=periods_per_year)


def _coverage(result: AlphaResult) -> SeriesCoverage:
    return SeriesCoverage(observations=result.observations, undefined=list(result.undefined))


def alpha_envelope(
    request: MultiWorldRebalanceRequest,
    response: MultiWorldRebalanceResponse,
    *,
    periods_per_year: float = DEFAULT_PERIODS_PER_YEAR,
) -> AlphaMetricsEnvelope:
    """Build the v2 ``alpha_metrics`` envelope of a plan, with its ``coverage`` (SPEC 2.4).

    Entries: ``per_world[w]`` for every world w in ``response.per_world``, and
    ``per_strategy[s][w]`` for every strategy s of such a world — the keys of
    ``response.per_world[w].scale_by_strategy`` plus the strategies that
    ``request.alpha_series.per_strategy`` names for w. Series for worlds outside the plan are
    ignored. ``coverage`` has the same entries: the observation count n and the keys
    reported as the 0.0 default because they are undefined (all six when n = 0).

    Values: :func:`alpha_performance` (with rf = tc = 0) of the matching Series converted by
    :func:`returns_from_series`, else every key 0.0 (no data: n = 0).
    The capital B used to turn ``pnl`` into returns is the allocation before the rebalance,
    in base currency: for a world ``total_equity × world_alloc_before[w]`` (0 when absent);
    for a strategy ``total_equity × strategy_alloc_before_total[w][s]`` when that entry
    exists, else the world's B.

    Args:
        request: the plan request (``alpha_series`` may be None: all zeros).
        response: the computed plan.
        periods_per_year: P for every series.

    Returns:
        The envelope; every value is a finite float. Cost O(total series length).

    Raises:
        AlphaSeriesUnusable: a supplied series cannot become returns (``pnl`` with B <= 0,
            an equity or capital that is not > 0 where a return divides by it, a return
            beyond float64); ``loc`` starts at ``alpha_series`` (e.g.
            ``("alpha_series", "per_strategy", "s1", "w1", "pnl")``).
        AlphaInputError: P is not a finite number > 0.
    """
    periods = check_periods_per_year(periods_per_year)
    alpha_series = request.alpha_series
    world_series = alpha_series.per_world if alpha_series else {}
    strategy_series = alpha_series.per_strategy if alpha_series else {}
    world_before = request.world_alloc_before or {}
    strategy_before = request.strategy_alloc_before_total or {}
    equity = request.total_equity

    per_world: dict[str, MetricValues] = {}
    per_strategy: dict[str, dict[str, MetricValues]] = {}
    coverage = AlphaCoverage()
    for world_id, plan in response.per_world.items():
        world_base = equity * world_before.get(world_id, 0.0)
        world_label = f"total_equity × world_alloc_before[{world_id}]" + (
            "" if world_id in world_before else " (no entry: 0)"
        )
        result = _series_result(
            world_series.get(world_id),
            base_capital=world_base,
            capital_label=world_label,
            periods_per_year=periods,
            loc=("alpha_series", "per_world", world_id),
        )
        per_world[world_id] = result.metrics
        coverage.per_world[world_id] = _coverage(result)
        strategies = set(plan.scale_by_strategy).union(
            strategy for strategy, by_world in strategy_series.items() if world_id in by_world
        )
        strategy_ratio = strategy_before.get(world_id, {})
        for strategy_id in sorted(strategies):
            ratio = strategy_ratio.get(strategy_id)
            if ratio is None:
                base, label = world_base, world_label
            else:
                base = equity * ratio
                label = f"total_equity × strategy_alloc_before_total[{world_id}][{strategy_id}]"
            result = _series_result(
                strategy_series.get(strategy_id, {}).get(world_id),
                base_capital=base,
                capital_label=label,
                periods_per_year=periods,
                loc=("alpha_series", "per_strategy", strategy_id, world_id),
            )
            per_strategy.setdefault(strategy_id, {})[world_id] = result.metrics
            coverage.per_strategy.setdefault(strategy_id, {})[world_id] = _coverage(result)
    return AlphaMetricsEnvelope(per_world=per_world, per_strategy=per_strategy, coverage=coverage)
