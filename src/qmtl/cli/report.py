"""``qmtl report --from FILE``: the six alpha metrics of a return series, as md, json or html.

Input: JSON ``{"returns": [...]}`` or CSV with a ``returns`` column (or a single column,
with or without a header). Every value must be a finite number: a ``null``, an empty cell, a
text value, ``NaN`` or ``Infinity`` is bad input (one line naming the element, exit 2).
"""

from __future__ import annotations

import csv
import io
import json
import math
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from qmtl.cli._io import EXIT_BAD_INPUT, console, fail
from qmtl.engine.alpha_input import AlphaInputError
from qmtl.sdk import build_report, render_html, render_json, render_markdown

__all__ = ["ReportFormat", "load_returns", "report_command"]


class ReportFormat(StrEnum):
    md = "md"
    json = "json"
    html = "html"


_SUFFIX_FORMATS = {".md": ReportFormat.md, ".markdown": ReportFormat.md,
                   ".json": ReportFormat.json, ".html": ReportFormat.html,
                   ".htm": ReportFormat.html}
_RENDERERS = {ReportFormat.md: render_markdown, ReportFormat.json: render_json,
              ReportFormat.html: render_html}


class BadReturns(ValueError):
    """The input file does not hold a usable return series (message names the element)."""


def _bad(message: str) -> NoReturn:
    raise BadReturns(message)


def _reject_constant(name: str) -> NoReturn:
    _bad(f"{name} is not a valid return (JSON numbers must be finite)")


def _json_returns(text: str) -> list[float]:
    try:
        payload = json.loads(text, parse_constant=_reject_constant)
    except BadReturns:
        raise
    except ValueError as exc:
        _bad(f"not valid JSON: {exc}")
    if not isinstance(payload, dict):
        _bad('expected a JSON object {"returns": [...]}')
    if "returns" not in payload:
        _bad('missing "returns": expected {"returns": [...]}')
    values = payload["returns"]
    if not isinstance(values, list):
        _bad(f'"returns" must be a list of numbers, got {type(values).__name__}')
    result: list[float] = []
    for index, value in enumerate(values):
        if value is None:
            _bad(f"returns[{index}] is null: every return must be a number")
        if isinstance(value, bool) or not isinstance(value, int | float):
            _bad(f"returns[{index}] is {type(value).__name__} {value!r}: every return must be "
                 "a number")
        number = float(value)
        if not math.isfinite(number):
            _bad(f"returns[{index}] is {number!r}: returns must be finite")
        result.append(number)
    return result


def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def _csv_returns(text: str) -> list[float]:
    rows = [(line, row) for line, row in enumerate(csv.reader(io.StringIO(text)), 1)
            if any(cell.strip() for cell in row)]
    if not rows:
        _bad("the CSV file is empty")
    header_line, header = rows[0]
    cells = [cell.strip() for cell in header]
    if all(_number(cell) is not None for cell in cells):
        if len(cells) != 1:
            _bad(f"line {header_line}: {len(cells)} columns and no header; add a header with a "
                 "'returns' column")
        column, data = 0, rows
    else:
        names = [cell.lower() for cell in cells]
        if "returns" in names:
            column = names.index("returns")
        elif len(names) == 1:
            column = 0
        else:
            _bad(f"no 'returns' column among {cells}")
        data = rows[1:]
    result: list[float] = []
    for line, row in data:
        cell = row[column].strip() if column < len(row) else ""
        if not cell:
            _bad(f"line {line}: empty returns value")
        number = _number(cell)
        if number is None:
            _bad(f"line {line}: {cell!r} is not a number")
        if not math.isfinite(number):
            _bad(f"line {line}: {cell!r} is not a finite return")
        result.append(number)
    return result


def load_returns(path: Path) -> list[float]:
    """Read a return series from a JSON or CSV file (see the module docstring).

    Raises:
        BadReturns: unreadable file, wrong shape, or a value that is not a finite number.
    """
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        _bad(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}")
    suffix = path.suffix.lower()
    as_json = suffix == ".json" or (suffix != ".csv" and text.lstrip()[:1] in ("{", "["))
    returns = _json_returns(text) if as_json else _csv_returns(text)
    if not returns:
        _bad("no returns in the file")
    return returns


def _choose_format(fmt: ReportFormat | None, out: Path | None) -> ReportFormat:
    if fmt is not None:
        return fmt
    if out is not None and out.suffix.lower() in _SUFFIX_FORMATS:
        return _SUFFIX_FORMATS[out.suffix.lower()]
    return ReportFormat.md


def report_command(
    source: Annotated[Path, typer.Option("--from", help="Returns: JSON {\"returns\": [...]} "
                                                        "or CSV (a 'returns' column).")],
    out: Annotated[Path | None, typer.Option("--out", help="Write here (stdout if omitted).")]
    = None,
    fmt: Annotated[ReportFormat | None, typer.Option(
        "--format", help="md, json or html (default: from --out's suffix, else md).")] = None,
    periods_per_year: Annotated[float, typer.Option(
        "--periods-per-year", help="P: 252 daily, 52 weekly, 12 monthly.")] = 252.0,
    risk_free: Annotated[float, typer.Option(
        "--risk-free", help="Risk-free return per period (Sharpe only).")] = 0.0,
) -> None:
    """Report the six alpha_performance metrics of a return series."""
    try:
        returns = load_returns(source)
        report = build_report(returns, periods_per_year=periods_per_year, risk_free=risk_free,
                              source=source.name)
    except BadReturns as exc:
        fail(f"{source}: {exc}", code=EXIT_BAD_INPUT)
    except AlphaInputError as exc:
        fail(f"--{exc.field.replace('_', '-')}: {exc}" if exc.field in (
            "periods_per_year", "risk_free") else f"{source}: {exc}", code=EXIT_BAD_INPUT)
    chosen = _choose_format(fmt, out)
    text = _RENDERERS[chosen](report)
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror}", code=EXIT_BAD_INPUT)
    console.print(f"wrote {out} ({chosen.value}, {report.observations} periods)",
                  highlight=False)
