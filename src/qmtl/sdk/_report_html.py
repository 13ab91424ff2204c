"""Self-contained HTML report with inline SVG equity-curve and drawdown plots (no matplotlib).

Long series are thinned to at most ``MAX_POINTS`` plotted points; the thinning always keeps
the first and last points and each curve's minimum and maximum, so the deepest drawdown is
drawn where it happened.
"""

from __future__ import annotations

import html

import numpy as np
import numpy.typing as npt

from qmtl.contracts import ALPHA_METRIC_KEYS

from ._alpha import METRIC_UNITS
from ._report import METRIC_UNDEFINED_WHEN, PerformanceReport, format_value

__all__ = ["MAX_POINTS", "render_html", "svg_line_chart"]

MAX_POINTS = 2000
WIDTH, HEIGHT, PAD_LEFT, PAD_RIGHT, PAD_Y = 760, 240, 70, 16, 24

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:820px;color:#1f2328}
table{border-collapse:collapse;margin:1rem 0}
td,th{border-bottom:1px solid #d0d7de;padding:.35rem .7rem;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#57606a;font-size:.9rem}
svg{display:block;margin:.5rem 0 1.5rem}
"""


def _thin(values: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
    n = values.size
    if n <= MAX_POINTS:
        return np.arange(n)
    picks = np.linspace(0, n - 1, MAX_POINTS - 2).astype(np.intp)
    return np.unique(np.concatenate([picks, [np.argmin(values), np.argmax(values)]]))


def svg_line_chart(values: npt.NDArray[np.float64], *, title: str, baseline: float,
                   percent: bool, color: str) -> str:
    """An inline ``<svg>`` line chart of ``values`` against the period index.

    Args:
        values: the curve (finite floats), index 0 = period 0.
        title: the accessible title.
        baseline: a reference value drawn as a dashed line (1.0 for wealth, 0.0 for drawdown).
        percent: label the y axis in percent.
        color: the stroke colour.
    """
    index = _thin(values)
    ys = values[index]
    low = float(min(ys.min(), baseline))
    high = float(max(ys.max(), baseline))
    if high - low <= 0:
        high, low = high + 0.5, low - 0.5
    inner_w = WIDTH - PAD_LEFT - PAD_RIGHT
    inner_h = HEIGHT - 2 * PAD_Y
    last = max(values.size - 1, 1)

    def x(i: float) -> float:
        return PAD_LEFT + inner_w * i / last

    def y(v: float) -> float:
        return PAD_Y + inner_h * (high - v) / (high - low)

    points = " ".join(f"{x(float(i)):.2f},{y(float(v)):.2f}" for i, v in zip(index, ys,
                                                                             strict=True))

    def label(v: float) -> str:
        return f"{v * 100:.2f} %" if percent else f"{v:.4g}"

    base_y = y(baseline)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{html.escape(title)}">'
        f"<title>{html.escape(title)}</title>"
        f'<rect x="{PAD_LEFT}" y="{PAD_Y}" width="{inner_w}" height="{inner_h}" '
        'fill="#f6f8fa" stroke="#d0d7de"/>'
        f'<line x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" y1="{base_y:.2f}" y2="{base_y:.2f}" '
        'stroke="#8c959f" stroke-dasharray="4 3"/>'
        f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{points}"/>'
        f'<text x="{PAD_LEFT - 6}" y="{PAD_Y + 4}" text-anchor="end" font-size="11">'
        f"{label(high)}</text>"
        f'<text x="{PAD_LEFT - 6}" y="{HEIGHT - PAD_Y + 4}" text-anchor="end" font-size="11">'
        f"{label(low)}</text>"
        f'<text x="{PAD_LEFT}" y="{HEIGHT - 6}" font-size="11">0</text>'
        f'<text x="{WIDTH - PAD_RIGHT}" y="{HEIGHT - 6}" text-anchor="end" font-size="11">'
        f"{values.size - 1} periods</text>"
        "</svg>"
    )


def render_html(report: PerformanceReport) -> str:
    """The report as one HTML page: parameters, the metric table and two inline SVG plots."""
    rows = []
    for key in ALPHA_METRIC_KEYS:
        note = (f' <span class="muted">(undefined: {html.escape(METRIC_UNDEFINED_WHEN[key])})'
                "</span>" if key in report.undefined else "")
        rows.append(f"<tr><td><code>{html.escape(key)}</code></td>"
                    f'<td class="num">{format_value(report.metrics[key])}</td>'
                    f"<td>{html.escape(METRIC_UNITS[key])}{note}</td></tr>")
    source = (f"<p>Source: <code>{html.escape(report.source)}</code></p>"
              if report.source else "")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<title>Performance report</title>"
        f"<style>{_STYLE}</style></head><body>"
        "<h1>Performance report</h1>"
        f"{source}"
        f'<p class="muted">Observations: {report.observations} periods · '
        f"P = {report.periods_per_year:g} periods/year · "
        f"risk-free {report.risk_free:g} per period · "
        f"total return {report.total_return * 100:+.4f} %</p>"
        "<table><thead><tr><th>metric</th><th>value</th><th>unit</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
        "<h2>Equity curve</h2>"
        + svg_line_chart(np.asarray(report.equity), title="Equity curve (wealth, W0 = 1)",
                         baseline=1.0, percent=False, color="#0969da")
        + "<h2>Drawdown</h2>"
        + svg_line_chart(np.asarray(report.drawdown), title="Drawdown from peak wealth",
                         baseline=0.0, percent=True, color="#cf222e")
        + "</body></html>\n"
    )
