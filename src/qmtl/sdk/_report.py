"""Performance reports: the six alpha metrics with units, tear-sheet statistics and curves.

Metrics come from :func:`qmtl.engine.alpha.alpha_performance_detail` (the function the
WorldService uses); CAGR, volatility and Sortino from :mod:`._report_stats`. The equity and
drawdown curves are computed here for plotting:

* wealth Wₜ = Πₛ≤ₜ (1 + rₛ), W₀ = 1, in log space; Wₜ = 0 from the first rₜ ≤ −1 on (ruin);
* drawdown Dₜ = Wₜ / max(1, maxₛ≤ₜ Wₛ) − 1, in [−1, 0].

A :class:`PerformanceReport` is one series; a :class:`TearSheet` puts several strategies (and an
optional benchmark) side by side. Renderers: :func:`render_markdown`, :func:`render_json`
(here) and :func:`render_html` (``_report_html``, matplotlib charts); each takes either.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from qmtl.contracts import ALPHA_METRIC_KEYS, ALPHA_PREFIX
from qmtl.engine.alpha import DEFAULT_PERIODS_PER_YEAR, alpha_performance_detail
from qmtl.engine.alpha_input import AlphaInputError, as_return_array

from ._alpha import METRIC_UNITS
from ._report_stats import annual_volatility, cagr, sortino

__all__ = [
    "DEFAULT_ROLLING_WINDOW",
    "METRIC_UNDEFINED_WHEN",
    "STATISTIC_UNITS",
    "PerformanceReport",
    "TearSheet",
    "as_tear_sheet",
    "build_report",
    "render_json",
    "render_markdown",
]

FloatArray = npt.NDArray[np.float64]
DateArray = npt.NDArray[np.datetime64]

DEFAULT_ROLLING_WINDOW = 63
"""Rolling Sharpe/volatility window: a quarter of trading days."""

METRIC_UNDEFINED_WHEN: dict[str, str] = {
    ALPHA_PREFIX + "sharpe": "fewer than 2 periods or zero volatility",
    ALPHA_PREFIX + "max_drawdown": "no periods",
    ALPHA_PREFIX + "win_ratio": "no non-zero period",
    ALPHA_PREFIX + "profit_factor": "no losing period",
    ALPHA_PREFIX + "car_mdd": "no drawdown",
    ALPHA_PREFIX + "rar_mdd": "no drawdown or no exposure",
}
"""When each metric is undefined (and reported as 0.0)."""

STATISTIC_UNITS: dict[str, str] = {
    "cagr": "compound annual growth rate Wₙ^(P/n) − 1 (ratio per year)",
    "volatility": "annualised std of returns, std(r, ddof = 1) × √P (ratio)",
    "sortino": "annualised mean excess return / downside deviation below rf (ratio)",
}
"""The tear-sheet statistics shown next to the SPEC 2.4 metrics."""


@dataclass(frozen=True, slots=True)
class PerformanceReport:
    """Everything a report shows about one return series.

    Attributes:
        metrics: the six ``alpha_performance.<metric>`` values (finite floats).
        undefined: keys reported as 0.0 because they are undefined for this series.
        observations: n, the periods used.
        periods_per_year: P.
        risk_free: rf per period (Sharpe and Sortino only).
        total_return: W_n − 1 (ratio; −1 after ruin).
        equity: W₀…Wₙ (read-only).
        drawdown: D₀…Dₙ (read-only).
        source: where the returns came from (a file name), for the header.
        name: the series' label (a CSV column, a strategy id).
        statistics: ``cagr``, ``volatility``, ``sortino`` (see :data:`STATISTIC_UNITS`).
        returns: r₁…rₙ, the observed returns (gaps dropped; read-only).
        dates: the date of each of r₁…rₙ (``datetime64[D]``), or None (period index).
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
    name: str = "returns"
    statistics: dict[str, float] = field(default_factory=dict)
    returns: FloatArray = field(default_factory=lambda: np.empty(0), repr=False)
    dates: DateArray | None = field(default=None, repr=False)

    @property
    def start(self) -> str | None:
        """The first date (ISO), or None without dates."""
        return str(self.dates[0]) if self.dates is not None and self.dates.size else None

    @property
    def end(self) -> str | None:
        """The last date (ISO), or None without dates."""
        return str(self.dates[-1]) if self.dates is not None and self.dates.size else None

    def summary(self) -> dict[str, Any]:
        """This series' numbers (no curves) for the JSON form."""
        return {
            "name": self.name,
            "observations": self.observations,
            "start": self.start,
            "end": self.end,
            "total_return": self.total_return,
            "metrics": dict(self.metrics),
            "statistics": dict(self.statistics),
            "undefined": list(self.undefined),
        }

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of a one-series report (metrics at full precision, units; no curves)."""
        return {
            "source": self.source,
            "observations": self.observations,
            "periods_per_year": self.periods_per_year,
            "risk_free": self.risk_free,
            "total_return": self.total_return,
            "metrics": dict(self.metrics),
            "statistics": dict(self.statistics),
            "units": {key: METRIC_UNITS[key] for key in ALPHA_METRIC_KEYS} | STATISTIC_UNITS,
            "undefined": list(self.undefined),
            "start": self.start,
            "end": self.end,
        }


@dataclass(frozen=True, slots=True)
class TearSheet:
    """Several strategies side by side, with an optional benchmark.

    Attributes:
        strategies: one report per strategy, in input order (at least one).
        benchmark: the benchmark's report, or None.
        rolling_window: periods per rolling Sharpe/volatility window.
        log_scale: draw wealth on a log axis.
        notes: remarks shown under the header (e.g. "no dates: period index").
    """

    strategies: tuple[PerformanceReport, ...]
    benchmark: PerformanceReport | None = None
    rolling_window: int = DEFAULT_ROLLING_WINDOW
    log_scale: bool = False
    notes: tuple[str, ...] = ()

    @property
    def series(self) -> tuple[PerformanceReport, ...]:
        """The strategies, then the benchmark."""
        return self.strategies + ((self.benchmark,) if self.benchmark else ())

    @property
    def primary(self) -> PerformanceReport:
        return self.strategies[0]

    def to_dict(self) -> dict[str, Any]:
        """The first strategy's one-series form, plus every strategy and the benchmark."""
        document = self.primary.to_dict()
        document["strategies"] = [report.summary() for report in self.strategies]
        document["benchmark"] = self.benchmark.summary() if self.benchmark else None
        document["rolling_window"] = self.rolling_window
        document["notes"] = list(self.notes)
        return document


def as_tear_sheet(report: PerformanceReport | TearSheet) -> TearSheet:
    """``report`` itself, or a one-strategy tear sheet around it."""
    return report if isinstance(report, TearSheet) else TearSheet(strategies=(report,))


def _curves(returns: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(equity W₀…Wₙ, drawdown D₀…Dₙ); see the module docstring. O(n)."""
    n = returns.size
    ruined = returns <= -1.0
    ruin_at = int(np.argmax(ruined)) if ruined.any() else n
    log_wealth = np.full(n + 1, -np.inf)
    log_wealth[0] = 0.0
    log_wealth[1 : ruin_at + 1] = np.cumsum(np.log1p(returns[:ruin_at]))
    with np.errstate(over="ignore"):
        equity = np.minimum(np.exp(log_wealth), np.finfo(np.float64).max)
    log_peak = np.maximum.accumulate(log_wealth)  # log_wealth[0] = 0 is W₀ = 1
    with np.errstate(invalid="ignore"):
        drawdown = np.where(np.isneginf(log_wealth), -1.0, np.expm1(log_wealth - log_peak))
    equity.setflags(write=False)
    drawdown.setflags(write=False)
    return equity, drawdown


def _as_dates(dates: Sequence[Any] | npt.NDArray[Any], size: int) -> DateArray:
    try:
        array = np.asarray(dates, dtype="datetime64[D]")
    except (TypeError, ValueError) as exc:
        raise AlphaInputError(f"dates must be ISO dates: {exc}", field="dates") from exc
    if array.ndim != 1 or array.size != size:
        raise AlphaInputError(f"dates has {array.size} entries for {size} returns", field="dates")
    return array


def build_report(
    returns: Any,
    *,
    periods_per_year: float = DEFAULT_PERIODS_PER_YEAR,
    risk_free: float = 0.0,
    source: str | None = None,
    name: str = "returns",
    dates: Sequence[Any] | npt.NDArray[Any] | None = None,
) -> PerformanceReport:
    """Compute a :class:`PerformanceReport`.

    Args:
        returns: simple per-period returns (ratios; NaN/None are missing periods, dropped).
        periods_per_year: P > 0.
        risk_free: rf, a return per period.
        source: a label for the header (e.g. the input file).
        name: the series' label.
        dates: one date per entry of ``returns`` (ISO strings, ``date`` or ``datetime64``);
            a missing period's date is dropped with it.

    Raises:
        AlphaInputError: ±inf, a non-number, P ≤ 0, a non-finite rf, or dates that do not
            match the returns (naming the field).
    """
    detail = alpha_performance_detail(
        returns, periods_per_year=periods_per_year, risk_free=risk_free
    )
    raw = as_return_array(returns)
    present = ~np.isnan(raw)
    observed = raw[present]
    observed.setflags(write=False)
    date_array = None if dates is None else _as_dates(dates, raw.size)[present]
    equity, drawdown = _curves(observed)
    total = float(equity[-1]) - 1.0
    periods = float(periods_per_year)
    return PerformanceReport(
        metrics=dict(detail.metrics),
        undefined=detail.undefined,
        observations=detail.observations,
        periods_per_year=periods,
        risk_free=float(risk_free),
        total_return=total if math.isfinite(total) else 0.0,
        equity=equity,
        drawdown=drawdown,
        source=source,
        name=name,
        statistics={
            "cagr": cagr(observed, periods),
            "volatility": annual_volatility(observed, periods),
            "sortino": sortino(observed, periods, float(risk_free)),
        },
        returns=observed,
        dates=date_array,
    )


def format_value(value: float) -> str:
    """Six decimals: enough for ratios and returns, stable for golden comparisons."""
    return f"{value:.6f}"


def render_json(report: PerformanceReport | TearSheet) -> str:
    """The report as indented JSON (see :meth:`TearSheet.to_dict`)."""
    document = as_tear_sheet(report).to_dict()
    return json.dumps(document, indent=2, allow_nan=False, ensure_ascii=False) + "\n"


def _label(report: PerformanceReport, sheet: TearSheet) -> str:
    return f"benchmark: {report.name}" if report is sheet.benchmark else report.name


def render_markdown(report: PerformanceReport | TearSheet) -> str:
    """The report as a Markdown page: parameters, a metric table with units, notes."""
    sheet = as_tear_sheet(report)
    first = sheet.primary
    columns = sheet.series
    lines = ["# Performance report", ""]
    if first.source:
        lines.append(f"Source: `{first.source}`  ")
    span = f" · {first.start} → {first.end}" if first.start else ""
    lines += [
        f"Observations: {first.observations} periods{span} · P = {first.periods_per_year:g} "
        f"periods/year · risk-free {first.risk_free:g} per period  ",
    ]
    for item in columns:
        prefix = "" if len(columns) == 1 else f"{_label(item, sheet)}: "
        lines.append(
            f"{prefix}Total return: {item.total_return * 100:+.4f} % "
            f"(final wealth {float(item.equity[-1]):.6g} per 1 invested)  "
        )
    lines[-1] = lines[-1].rstrip()
    if sheet.notes:
        lines += ["", "  \n".join(f"_{note}_" for note in sheet.notes)]
    heads = ["value"] if len(columns) == 1 else [_label(item, sheet) for item in columns]
    lines += [
        "",
        "| metric | " + " | ".join(heads) + " | unit |",
        "|---|" + "---:|" * len(heads) + "---|",
    ]
    for key in ALPHA_METRIC_KEYS:
        cells = [
            format_value(item.metrics[key]) + (" *" if key in item.undefined else "")
            for item in columns
        ]
        unit = METRIC_UNITS[key].replace("|", "\\|")  # a bare | would split the cell
        lines.append(f"| `{key}` | " + " | ".join(cells) + f" | {unit} |")
    for key, unit in STATISTIC_UNITS.items():
        cells = [format_value(item.statistics[key]) for item in columns]
        lines.append(f"| {key} | " + " | ".join(cells) + f" | {unit} |")
    undefined = [(item, key) for item in columns for key in item.undefined]
    if undefined:
        lines += ["", "\\* undefined for this series, reported as 0.0:"]
        for item, key in undefined:
            who = "" if len(columns) == 1 else f"{_label(item, sheet)}, "
            lines.append(f"- {who}`{key}`: {METRIC_UNDEFINED_WHEN[key]}")
    return "\n".join(lines) + "\n"
