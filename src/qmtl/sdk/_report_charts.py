"""Tear-sheet charts drawn with matplotlib's object API (no pyplot, no global backend switch).

Why matplotlib: it is what the quantstats/pyfolio tear sheets use, it writes static SVG and PNG
without a browser or a JavaScript runtime (so the HTML report stays one offline file), it draws
date axes, log scales and annotations that a hand-written SVG would have to re-implement, and
it is a long-maintained library with wheels for every platform. It is imported only when a
chart is drawn, so ``qmtl --help`` does not pay for it.

Each ``*_figure`` function returns a :class:`matplotlib.figure.Figure`; :func:`figure_svg`
turns one into inline ``<svg>`` text (text kept as ``<text>``, fixed ids: byte-stable output),
and ``figure.savefig(path)`` writes a PNG (``scripts/report_screenshots.py``).
"""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt

from ._report import PerformanceReport, TearSheet
from ._report_stats import rolling_sharpe, rolling_volatility

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["STYLE", "draw", "drawdown_figure", "equity_figure", "figure_svg", "rolling_figure"]

STYLE: dict[str, Any] = {
    "svg.fonttype": "none",  # keep labels as text: selectable, searchable, smaller
    "svg.hashsalt": "qmtl-report",  # deterministic element ids
    "font.size": 9,
    "axes.grid": True,
    "grid.alpha": 0.35,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
"""matplotlib rc settings used (locally, through ``rc_context``) for every chart."""

_PALETTE = ("#0969da", "#bf3989", "#1a7f37", "#9a6700", "#8250df", "#cf222e")
_BENCHMARK = "#57606a"
_WIDTH, _HEIGHT = 9.0, 3.2  # inches


def _color(index: int) -> str:
    return _PALETTE[index % len(_PALETTE)]


def _new_figure(rows: int = 1) -> tuple[Figure, list[Axes]]:
    from matplotlib.figure import Figure

    figure = Figure(
        figsize=(_WIDTH, _HEIGHT * (0.75 * rows if rows > 1 else 1)), layout="constrained"
    )
    axes = figure.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    return figure, list(axes)


MAX_POINTS = 3000
"""Points drawn per curve; longer curves are thinned (a 100,000-day series would otherwise
make a multi-megabyte page that draws no more than a screen's width of detail)."""


def _thin(x: npt.NDArray[Any], y: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """At most about :data:`MAX_POINTS` points, always with the ends and y's extremes."""
    if y.size <= MAX_POINTS:
        return x, y
    picks = np.linspace(0, y.size - 1, MAX_POINTS - 2).astype(np.intp)
    keep = np.unique(np.concatenate([picks, [np.argmin(y), np.argmax(y)]]))
    return x[keep], y[keep]


def _x(report: PerformanceReport, *, with_start: bool) -> npt.NDArray[Any]:
    """x positions of r₁…rₙ (dates or 1…n); with W₀ one step before the first."""
    n = report.observations
    if report.dates is None:
        return np.arange(0 if with_start else 1, n + 1)
    dates = report.dates
    if not with_start:
        return dates
    step = np.median(np.diff(dates)) if n > 1 else np.timedelta64(1, "D")
    return np.concatenate(([dates[0] - step], dates))


def _date_axis(axis: Axes, sheet: TearSheet) -> None:
    if sheet.primary.dates is None:
        axis.set_xlabel("period")
        return
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    locator = AutoDateLocator()  # type: ignore[no-untyped-call]
    axis.xaxis.set_major_locator(locator)
    axis.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]


def _percent(axis: Axes) -> None:
    from matplotlib.ticker import PercentFormatter

    # decimals=None: as many decimals as the range needs (no "-0%, -0%, -1%")
    axis.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=None))


def _style_of(sheet: TearSheet, report: PerformanceReport) -> dict[str, Any]:
    if report is sheet.benchmark:
        return {"color": _BENCHMARK, "linestyle": "--", "label": f"benchmark: {report.name}"}
    return {"color": _color(sheet.strategies.index(report)), "label": report.name}


def equity_figure(sheet: TearSheet) -> Figure:
    """Wealth W₀…Wₙ of every series (benchmark dashed), log axis when ``sheet.log_scale``."""
    figure, (axis,) = _new_figure()
    for report in sheet.series:
        axis.plot(
            *_thin(_x(report, with_start=True), report.equity),
            linewidth=1.3,
            **_style_of(sheet, report),
        )
    axis.axhline(1.0, color="#8c959f", linewidth=0.8, linestyle=":")
    if sheet.log_scale:
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        axis.set_yscale("log", nonpositive="mask")
        # 0.7, 1, 1.5, 2, 3 … rather than powers of ten: wealth rarely spans a decade
        axis.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 1.5, 2.0, 3.0, 5.0, 7.0)))
        axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axis.yaxis.set_minor_formatter(NullFormatter())
    axis.set_ylabel("wealth (W₀ = 1)" + (", log scale" if sheet.log_scale else ""))
    axis.set_title("Equity", loc="left")
    axis.legend(loc="upper left", frameon=False)
    _date_axis(axis, sheet)
    return figure


def _mark_maximum(axis: Axes, report: PerformanceReport, color: str) -> None:
    worst = int(np.argmin(report.drawdown))
    if report.drawdown[worst] >= 0.0:
        return
    x = _x(report, with_start=True)[worst]
    value = float(report.drawdown[worst])
    where = f" on {report.dates[worst - 1]}" if report.dates is not None else f" at {worst}"
    axis.scatter([x], [value], color=color, zorder=3, s=18)
    right_half = worst > report.drawdown.size / 2  # keep the label inside the axes
    axis.annotate(
        f"max {value * 100:.1f} %{where}",
        (x, value),
        xytext=(-6 if right_half else 6, -2),
        textcoords="offset points",
        color=color,
        fontsize=8,
        va="top",
        ha="right" if right_half else "left",
    )


def drawdown_figure(sheet: TearSheet) -> Figure:
    """Underwater curve Dₜ of each strategy, its deepest point marked and labelled."""
    figure, (axis,) = _new_figure()
    for report in sheet.strategies:
        style = _style_of(sheet, report)
        x, drawdown = _thin(_x(report, with_start=True), report.drawdown)
        axis.fill_between(x, drawdown, 0.0, color=style["color"], alpha=0.18, linewidth=0)
        axis.plot(x, drawdown, linewidth=1.0, **style)
        _mark_maximum(axis, report, style["color"])
    deepest = min(float(report.drawdown.min()) for report in sheet.strategies)
    # room under the deepest point for its label
    axis.set_ylim(bottom=deepest * 1.15 if deepest < 0 else -0.01, top=0.0)
    _percent(axis)
    axis.set_ylabel("drawdown from peak")
    axis.set_title("Underwater (drawdown)", loc="left")
    if len(sheet.strategies) > 1:
        axis.legend(loc="lower left", frameon=False)
    _date_axis(axis, sheet)
    return figure


def rolling_figure(sheet: TearSheet) -> Figure | None:
    """Rolling Sharpe (top) and volatility (bottom); None when every series is too short."""
    window = sheet.rolling_window
    if all(report.observations < window for report in sheet.series):
        return None
    figure, (sharpe_axis, vol_axis) = _new_figure(rows=2)
    for report in sheet.series:
        if report.observations < window:
            continue
        x = _x(report, with_start=False)[window - 1 :]
        style = _style_of(sheet, report)
        args = (report.returns, window, report.periods_per_year)
        sharpe = rolling_sharpe(*args, report.risk_free)
        sharpe_axis.plot(*_thin(x, sharpe), linewidth=1.0, **style)
        vol_axis.plot(*_thin(x, rolling_volatility(*args)), linewidth=1.0, **style)
    sharpe_axis.axhline(0.0, color="#8c959f", linewidth=0.8)
    sharpe_axis.set_ylabel("Sharpe (annualised)")
    sharpe_axis.set_title(f"Rolling Sharpe and volatility ({window} periods)", loc="left")
    sharpe_axis.legend(loc="upper left", frameon=False, ncols=min(len(sheet.series), 4))
    vol_axis.set_ylabel("volatility (annualised)")
    _percent(vol_axis)
    _date_axis(vol_axis, sheet)
    return figure


_XML_PROLOGUE = re.compile(r"^.*?(?=<svg)", re.S)
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.S)  # RDF boilerplate, not needed inline


def figure_svg(figure: Figure, *, title: str) -> str:
    """``figure`` as inline SVG text (no XML prologue), with an accessible ``<title>``."""
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context(cast(Any, STYLE)):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    svg = _METADATA.sub("", _XML_PROLOGUE.sub("", buffer.getvalue(), count=1), count=1)
    opening = svg.index(">", svg.index("<svg")) + 1
    return (
        svg[:opening].replace("<svg ", f'<svg role="img" aria-label="{_attr(title)}" ', 1)
        + f"<title>{_attr(title)}</title>"
        + svg[opening:]
    )


def _attr(text: str) -> str:
    import html

    return html.escape(text, quote=True)


def draw(sheet: TearSheet) -> dict[str, Figure]:
    """Every chart of ``sheet`` drawn under :data:`STYLE` (rolling omitted when too short)."""
    import matplotlib

    with matplotlib.rc_context(cast(Any, STYLE)):
        figures = {"equity": equity_figure(sheet), "drawdown": drawdown_figure(sheet)}
        rolling = rolling_figure(sheet)
    if rolling is not None:
        figures["rolling"] = rolling
    return figures
