"""The HTML tear sheet: one self-contained page (inline CSS and SVG; no script, no network).

Sections: the header (source, period, P, rf, notes), the metric table (one column per series:
total return, CAGR, volatility, Sortino and the six SPEC 2.4 metrics; each cell carries the
full-precision value in ``data-value``), the equity, underwater and rolling charts drawn by
matplotlib (:mod:`._report_charts`) and, when the input has dates, a monthly returns table per
series (compounded per calendar month, with the year's total).
"""

from __future__ import annotations

import html

import numpy as np

from qmtl.contracts import ALPHA_METRIC_KEYS

from ._alpha import METRIC_UNITS
from ._report import (
    METRIC_UNDEFINED_WHEN,
    STATISTIC_UNITS,
    PerformanceReport,
    TearSheet,
    as_tear_sheet,
    format_value,
)
from ._report_charts import draw, figure_svg
from ._report_stats import monthly_returns

__all__ = ["render_html"]

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:960px;color:#1f2328;padding:0 1rem}
table{border-collapse:collapse;margin:1rem 0}
td,th{border-bottom:1px solid #d0d7de;padding:.3rem .6rem;text-align:left}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.muted{color:#57606a;font-size:.9rem}
figure{margin:.5rem 0 1.5rem}figure svg{width:100%;height:auto}
table.monthly td{font-size:.85rem;padding:.2rem .35rem}
"""

_CAPTIONS = {
    "equity": "Equity: wealth per 1 invested",
    "drawdown": "Underwater: drawdown from peak wealth, deepest point marked",
    "rolling": "Rolling Sharpe and volatility",
}

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _label(report: PerformanceReport, sheet: TearSheet) -> str:
    return f"benchmark: {report.name}" if report is sheet.benchmark else report.name


def _cell(value: float, *, percent: bool = False, mark: str = "") -> str:
    shown = f"{value * 100:+.2f} %" if percent else format_value(value)
    return f'<td class="num" data-value="{value!r}">{shown}{mark}</td>'


def _metric_table(sheet: TearSheet) -> str:
    columns = sheet.series
    head = "".join(f'<th class="num">{_esc(_label(r, sheet))}</th>' for r in columns)
    rows = [
        "<tr><td>total return</td>"
        + "".join(_cell(r.total_return, percent=True) for r in columns)
        + "<td>Wₙ − 1 over the whole series</td></tr>",
        "<tr><td>observations</td>"
        + "".join(
            f'<td class="num" data-value="{r.observations}">{r.observations}</td>' for r in columns
        )
        + "<td>periods used (gaps dropped)</td></tr>",
    ]
    for key, unit in STATISTIC_UNITS.items():
        rows.append(
            f'<tr data-key="{key}"><td>{key}</td>'
            + "".join(_cell(r.statistics[key]) for r in columns)
            + f"<td>{_esc(unit)}</td></tr>"
        )
    for key in ALPHA_METRIC_KEYS:
        cells = "".join(
            _cell(r.metrics[key], mark=" *" if key in r.undefined else "") for r in columns
        )
        rows.append(
            f'<tr data-key="{_esc(key)}"><td><code>{_esc(key)}</code></td>{cells}'
            f"<td>{_esc(METRIC_UNITS[key])}</td></tr>"
        )
    notes = [
        f"<li>{_esc(_label(r, sheet))}: <code>{_esc(key)}</code> — "
        f"{_esc(METRIC_UNDEFINED_WHEN[key])}</li>"
        for r in columns
        for key in r.undefined
    ]
    footnote = (
        f'<p class="muted">* undefined, reported as 0.0:</p><ul class="muted">{"".join(notes)}</ul>'
        if notes
        else ""
    )
    return (
        f'<table id="metrics"><thead><tr><th>metric</th>{head}<th>unit</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>{footnote}"
    )


def _shade(value: float) -> str:
    # green for gains, red for losses; ±10 % a month is full strength
    if not np.isfinite(value):
        return ""
    strength = min(abs(value) / 0.10, 1.0) * 0.55
    rgb = "26,127,55" if value >= 0 else "207,34,46"
    return f' style="background:rgba({rgb},{strength:.2f})"'


def _monthly_table(report: PerformanceReport, sheet: TearSheet) -> str:
    if report.dates is None or report.observations == 0:
        return ""
    table = monthly_returns(report.returns, report.dates)
    head = "".join(f'<th class="num">{m}</th>' for m in _MONTHS)
    body = []
    for row, year in enumerate(table.years):
        cells = []
        for value in [*table.values[row], table.yearly[row]]:
            if np.isnan(value):
                cells.append('<td class="num"></td>')
            else:
                cells.append(
                    f'<td class="num" data-value="{float(value)!r}"{_shade(value)}>'
                    f"{value * 100:.1f}</td>"
                )
        body.append(f"<tr><th>{year}</th>{''.join(cells)}</tr>")
    slug = _esc(report.name)
    return (
        f"<h3>{_esc(_label(report, sheet))}</h3>"
        f'<table class="monthly" id="monthly-{slug}"><thead><tr><th>year</th>{head}'
        f'<th class="num">year</th></tr></thead><tbody>{"".join(body)}</tbody></table>'
    )


def _header(sheet: TearSheet) -> str:
    first = sheet.primary
    source = f"<p>Source: <code>{_esc(first.source)}</code></p>" if first.source else ""
    span = f"{_esc(first.start)} → {_esc(first.end)} · " if first.start else ""
    notes = "".join(f'<p class="muted note">{_esc(note)}</p>' for note in sheet.notes)
    return (
        f'{source}<p class="muted">{span}Observations: {first.observations} periods · '
        f"P = {first.periods_per_year:g} periods/year · "
        f"risk-free {first.risk_free:g} per period</p>{notes}"
    )


def render_html(report: PerformanceReport | TearSheet) -> str:
    """The tear sheet as one HTML page (see the module docstring)."""
    sheet = as_tear_sheet(report)
    figures = draw(sheet)
    charts = "".join(
        f'<figure id="chart-{name}">{figure_svg(figure, title=_CAPTIONS[name])}'
        f'<figcaption class="muted">{_esc(_CAPTIONS[name])}</figcaption></figure>'
        for name, figure in figures.items()
    )
    if "rolling" not in figures:
        charts += (
            f'<p class="muted note">No rolling charts: fewer than '
            f"{sheet.rolling_window} periods (--rolling-window).</p>"
        )
    monthly = "".join(_monthly_table(r, sheet) for r in sheet.series)
    monthly_section = (
        "<h2>Monthly returns (%)</h2>" + monthly
        if monthly
        else '<p class="muted note">No monthly returns table: the input has no dates.</p>'
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>Performance report</title>"
        f"<style>{_STYLE}</style></head><body>"
        "<h1>Performance report</h1>"
        f"{_header(sheet)}{_metric_table(sheet)}"
        f"<h2>Charts</h2>{charts}{monthly_section}"
        "</body></html>\n"
    )
