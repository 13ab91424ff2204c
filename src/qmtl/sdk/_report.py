"""Performance report of a return series: the six alpha metrics with units, plus curves.

Metrics come from :func:`qmtl.engine.alpha.alpha_performance_detail` (the function the
WorldService uses). The equity and drawdown curves are computed here for plotting only:

* wealth Wₜ = Πₛ≤ₜ (1 + rₛ), W₀ = 1, in log space; Wₜ = 0 from the first rₜ ≤ −1 on (ruin);
* drawdown Dₜ = Wₜ / max(1, maxₛ≤ₜ Wₛ) − 1, in [−1, 0].

Renderers: :func:`render_markdown`, :func:`render_json` and (in ``_report_html``)
:func:`render_html`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from qmtl.contracts import ALPHA_METRIC_KEYS, ALPHA_PREFIX
from qmtl.engine.alpha import DEFAULT_PERIODS_PER_YEAR, alpha_performance_detail
from qmtl.engine.alpha_input import as_return_array

from ._alpha import METRIC_UNITS

__all__ = [
    "METRIC_UNDEFINED_WHEN",
    "PerformanceReport",
    "build_report",
    "render_json",
    "render_markdown",
]

FloatArray = npt.NDArray[np.float64]

METRIC_UNDEFINED_WHEN: dict[str, str] = {
    ALPHA_PREFIX + "sharpe": "fewer than 2 periods or zero volatility",
    ALPHA_PREFIX + "max_drawdown": "no periods",
    ALPHA_PREFIX + "win_ratio": "no non-zero period",
    ALPHA_PREFIX + "profit_factor": "no losing period",
    ALPHA_PREFIX + "car_mdd": "no drawdown",
    ALPHA_PREFIX + "rar_mdd": "no drawdown or no exposure",
}
"""When each metric is undefined (and reported as 0.0)."""


@dataclass(frozen=True, slots=True)
class PerformanceReport:
    """Everything a report shows.

    Attributes:
        metrics: the six ``alpha_performance.<metric>`` values (finite floats).
        undefined: keys reported as 0.0 because they are undefined for this series.
        observations: n, the periods used.
        periods_per_year: P.
        risk_free: rf per period (Sharpe only).
        total_return: W_n − 1 (ratio; −1 after ruin).
        equity: W₀…Wₙ (read-only).
        drawdown: D₀…Dₙ (read-only).
        source: where the returns came from (a file name), for the header.
    """

    metrics: dict[str, float]
    undefined: tuple[str, ...]
    observations: int
    periods_per_year: float
    risk_free: float
    total_return: float
    equity: FloatArray = field(repr=False)
    drawdown: FloatArray = field(repr=False)
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (metrics at full precision, units, parameters; no curves)."""
        return {
            "source": self.source,
            "observations": self.observations,
            "periods_per_year": self.periods_per_year,
            "risk_free": self.risk_free,
            "total_return": self.total_return,
            "metrics": dict(self.metrics),
            "units": {key: METRIC_UNITS[key] for key in ALPHA_METRIC_KEYS},
            "undefined": list(self.undefined),
        }


def _curves(returns: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(equity W₀…Wₙ, drawdown D₀…Dₙ); see the module docstring. O(n)."""
    n = returns.size
    ruined = returns <= -1.0
    ruin_at = int(np.argmax(ruined)) if ruined.any() else n
    log_wealth = np.full(n + 1, -np.inf)
    log_wealth[0] = 0.0
    log_wealth[1:ruin_at + 1] = np.cumsum(np.log1p(returns[:ruin_at]))
    with np.errstate(over="ignore"):
        equity = np.minimum(np.exp(log_wealth), np.finfo(np.float64).max)
    log_peak = np.maximum.accumulate(log_wealth)  # log_wealth[0] = 0 is W₀ = 1
    with np.errstate(invalid="ignore"):
        drawdown = np.where(np.isneginf(log_wealth), -1.0, np.expm1(log_wealth - log_peak))
    equity.setflags(write=False)
    drawdown.setflags(write=False)
    return equity, drawdown


def build_report(returns: Any, *, periods_per_year: float = DEFAULT_PERIODS_PER_YEAR,
                 risk_free: float = 0.0, source: str | None = None) -> PerformanceReport:
    """Compute a :class:`PerformanceReport`.

    Args:
        returns: simple per-period returns (ratios; NaN/None are missing periods, dropped).
        periods_per_year: P > 0.
        risk_free: rf, a return per period.
        source: a label for the header (e.g. the input file).

    Raises:
        AlphaInputError: ±inf, a non-number, P ≤ 0 or a non-finite rf (naming the field).
    """
    detail = alpha_performance_detail(returns, periods_per_year=periods_per_year,
                                      risk_free=risk_free)
    observed = as_return_array(returns)
    observed = observed[~np.isnan(observed)]
    equity, drawdown = _curves(observed)
    total = float(equity[-1]) - 1.0
    return PerformanceReport(
        metrics=dict(detail.metrics), undefined=detail.undefined,
        observations=detail.observations, periods_per_year=float(periods_per_year),
        risk_free=float(risk_free), total_return=total if math.isfinite(total) else 0.0,
        equity=equity, drawdown=drawdown, source=source,
    )


def format_value(value: float) -> str:
    """Six decimals: enough for ratios and returns, stable for golden comparisons."""
    return f"{value:.6f}"


def render_json(report: PerformanceReport) -> str:
    """The report as indented JSON (see :meth:`PerformanceReport.to_dict`)."""
    return json.dumps(report.to_dict(), indent=2, allow_nan=False, ensure_ascii=False) + "\n"


def render_markdown(report: PerformanceReport) -> str:
    """The report as a Markdown page: parameters, a metric table with units, notes."""
    lines = ["# Performance report", ""]
    if report.source:
        lines.append(f"Source: `{report.source}`  ")
    lines += [
        f"Observations: {report.observations} periods · P = {report.periods_per_year:g} "
        f"periods/year · risk-free {report.risk_free:g} per period  ",
        f"Total return: {report.total_return * 100:+.4f} % "
        f"(final wealth {float(report.equity[-1]):.6g} per 1 invested)",
        "",
        "| metric | value | unit |",
        "|---|---:|---|",
    ]
    for key in ALPHA_METRIC_KEYS:
        mark = " *" if key in report.undefined else ""
        unit = METRIC_UNITS[key].replace("|", "\\|")  # a bare | would split the cell
        lines.append(f"| `{key}` | {format_value(report.metrics[key])}{mark} | {unit} |")
    if report.undefined:
        lines += ["", "\\* undefined for this series, reported as 0.0:"]
        lines += [f"- `{key}`: {METRIC_UNDEFINED_WHEN[key]}" for key in report.undefined]
    return "\n".join(lines) + "\n"
