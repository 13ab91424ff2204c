"""``qmtl report --from FILE``: a tear sheet of one or more return series, as md, json or html.

Input (see :mod:`qmtl.cli._report_input`): CSV with a date column and one column per strategy,
JSON ``{"returns": ...}``, or — with ``--world W`` — a rebalance request whose
``alpha_series`` holds the world's (and its strategies') series. Every value must be a finite
number: a ``null``, an empty cell, a text value, ``NaN`` or ``Infinity`` is bad input (one line
naming the element, exit 2).
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from qmtl.cli._io import EXIT_BAD_INPUT, console, fail, report_validation_error
from qmtl.cli._report_input import (
    BadReturns,
    ReturnTable,
    is_json,
    load_table,
    parse_json,
    read_text,
)

if TYPE_CHECKING:
    from qmtl.sdk import PerformanceReport, TearSheet

__all__ = ["ReportFormat", "load_returns", "report_command", "tear_sheet"]


class ReportFormat(StrEnum):
    md = "md"
    json = "json"
    html = "html"


_SUFFIX_FORMATS = {
    ".md": ReportFormat.md,
    ".markdown": ReportFormat.md,
    ".json": ReportFormat.json,
    ".html": ReportFormat.html,
    ".htm": ReportFormat.html,
}
NO_DATES = "No dates in the input: the x axis is the period index."


def load_returns(path: Path) -> list[float]:
    """The first return series of ``path`` (JSON or CSV; see the module docstring).

    Raises:
        BadReturns: unreadable file, wrong shape, or a value that is not a finite number.
    """
    table = load_table(path, columns=[], benchmark=None)
    return [value for value in next(iter(table.columns.values())) if value is not None]


def _benchmark_file(table: ReturnTable, path: Path) -> tuple[str, list[float | None]]:
    """The first series of a separate benchmark file, aligned to ``table`` by date or position."""
    other = load_table(path, columns=[], benchmark=None)
    values = next(iter(other.columns.values()))
    if table.dates is not None and other.dates is not None:
        by_date = dict(zip(other.dates, values, strict=True))
        missing = next((d for d in table.dates if d not in by_date), None)
        if missing is not None:
            raise BadReturns(f"--benchmark {path}: no value for {missing}")
        return path.stem, [by_date[d] for d in table.dates]
    if len(values) != table.size:
        raise BadReturns(
            f"--benchmark {path}: {len(values)} values for {table.size} returns "
            "(without dates on both sides they are matched by position)"
        )
    return path.stem, values


def _request_table(source: Path, world: str) -> ReturnTable:
    """The world's series (and its strategies') from a request's ``alpha_series`` (SPEC 2.4)."""
    from pydantic import ValidationError

    from qmtl.contracts import MultiWorldRebalanceRequest
    from qmtl.engine.alpha_input import returns_from_series

    try:
        request = MultiWorldRebalanceRequest.model_validate(parse_json(read_text(source)))
    except ValidationError as exc:
        report_validation_error(exc, source=str(source))
    series = request.alpha_series
    worlds = sorted(series.per_world) if series else []
    if series is None or world not in series.per_world:
        raise BadReturns(
            f"--world {world}: no alpha_series.per_world.{world} in the request "
            f"(worlds with series: {', '.join(worlds) or 'none'})"
        )
    world_base = request.total_equity * (request.world_alloc_before or {}).get(world, 0.0)
    strategy_before = (request.strategy_alloc_before_total or {}).get(world, {})
    named = [(world, f"alpha_series.per_world.{world}", series.per_world[world], world_base)]
    for strategy, by_world in sorted(series.per_strategy.items()):
        if world in by_world:
            ratio = strategy_before.get(strategy)
            base = world_base if ratio is None else request.total_equity * ratio
            path = f"alpha_series.per_strategy.{strategy}.{world}"
            named.append((strategy, path, by_world[world], base))
    columns: dict[str, list[float | None]] = {}
    notes = [f"From the request's alpha_series for world {world}."]
    for name, path, raw, base in named:
        uses_pnl = raw.returns is None and raw.equity is None and raw.pnl is not None
        if uses_pnl and not base > 0:
            raise BadReturns(
                f"{path}.pnl needs a capital base: total_equity × "
                f"world_alloc_before[{world}] is {base:g} (SPEC 2.4)"
            )
        returns = returns_from_series(raw, base_capital=base)
        if returns.size == 0:
            raise BadReturns(
                f"{path}: no usable returns (empty, or a capital or equity that "
                "is not strictly positive)"
            )
        columns[name] = [None if v != v else float(v) for v in returns]  # NaN: a gap
        if uses_pnl:
            notes.append(f"{name}: pnl turned into returns on a capital base of {base:g}.")
    # Without dates the series need not have one length: each is drawn over its own periods.
    return ReturnTable(columns=columns, notes=notes)


def _load(
    source: Path, *, world: str | None, columns: list[str], benchmark: str | None
) -> ReturnTable:
    if world is not None:
        if benchmark is not None or columns:
            raise BadReturns("--world reads a request: --benchmark and --column do not apply")
        return _request_table(source, world)
    table = load_table(source, columns=columns, benchmark=benchmark)
    json_input = is_json(source, read_text(source))
    # --benchmark names a CSV column when there is one, else a file (which overrides a JSON
    # document's own "benchmark")
    if benchmark is not None and (json_input or table.benchmark is None):
        bench_path = Path(benchmark)
        if not bench_path.is_file():
            raise BadReturns(f"--benchmark {benchmark}: not a column of the input and not a file")
        table.benchmark = _benchmark_file(table, bench_path)
    return table


def tear_sheet(
    source: Path,
    *,
    world: str | None = None,
    columns: list[str] | None = None,
    benchmark: str | None = None,
    periods_per_year: float = 252.0,
    risk_free: float = 0.0,
    rolling_window: int = 63,
    log_scale: bool = False,
) -> TearSheet:
    """The tear sheet ``qmtl report`` renders (also used by ``scripts/report_screenshots.py``).

    Raises:
        BadReturns: the input is not usable (the message names the element).
        AlphaInputError: P ≤ 0 or a non-finite rf (naming the field).
    """
    from qmtl.sdk import TearSheet, build_report

    table = _load(source, world=world, columns=columns or [], benchmark=benchmark)
    dates = _iso(table.dates)

    def report(name: str, values: list[float | None]) -> PerformanceReport:
        return build_report(
            values,
            periods_per_year=periods_per_year,
            risk_free=risk_free,
            source=source.name,
            name=name,
            dates=dates,
        )

    strategies = tuple(report(name, values) for name, values in table.columns.items())
    bench = report(*table.benchmark) if table.benchmark else None
    notes = [*table.notes, *([NO_DATES] if dates is None else [])]
    return TearSheet(
        strategies=strategies,
        benchmark=bench,
        rolling_window=rolling_window,
        log_scale=log_scale,
        notes=tuple(notes),
    )


def _choose_format(fmt: ReportFormat | None, out: Path | None) -> ReportFormat:
    if fmt is not None:
        return fmt
    if out is not None and out.suffix.lower() in _SUFFIX_FORMATS:
        return _SUFFIX_FORMATS[out.suffix.lower()]
    return ReportFormat.md


def _iso(dates: list[date] | None) -> list[str] | None:
    return None if dates is None else [d.isoformat() for d in dates]


def report_command(
    source: Annotated[
        Path,
        typer.Option(
            "--from",
            metavar="FILE",
            help="Returns: CSV (a date column, one column per strategy) or JSON "
            '{"returns": ...}; with --world, a rebalance request.',
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", metavar="FILE", help="Write here; the folder must exist (default: stdout)."
        ),
    ] = None,
    fmt: Annotated[
        ReportFormat | None,
        typer.Option("--format", help="md, json or html (default: from --out's suffix, else md)."),
    ] = None,
    periods_per_year: Annotated[
        float,
        typer.Option(
            "--periods-per-year", metavar="P", help="P: 252 daily, 52 weekly, 12 monthly."
        ),
    ] = 252.0,
    risk_free: Annotated[
        float,
        typer.Option(
            "--risk-free", metavar="R", help="Risk-free return per period (Sharpe and Sortino)."
        ),
    ] = 0.0,
    columns: Annotated[
        list[str] | None,
        typer.Option(
            "--column",
            metavar="NAME",
            help="CSV column of a strategy (repeat for several; default: 'returns', "
            "else every column but the date and the benchmark).",
        ),
    ] = None,
    benchmark: Annotated[
        str | None,
        typer.Option(
            "--benchmark",
            metavar="NAME|FILE",
            help="Benchmark: a column of the input, or a CSV/JSON file.",
        ),
    ] = None,
    world: Annotated[
        str | None,
        typer.Option(
            "--world",
            metavar="W",
            help="Read --from as a rebalance request: this world's alpha_series.",
        ),
    ] = None,
    log_scale: Annotated[
        bool, typer.Option("--log-scale", help="HTML: wealth on a log axis.")
    ] = False,
    rolling_window: Annotated[
        int,
        typer.Option(
            "--rolling-window",
            metavar="N",
            help="Periods per rolling Sharpe/volatility window (≥ 2).",
        ),
    ] = 63,
) -> None:
    """Tear sheet of return series: SPEC 2.4 metrics, CAGR, volatility, Sortino and charts."""
    # imported here: `qmtl --help` should not pay for numpy, the engine or matplotlib
    from qmtl.engine.alpha_input import AlphaInputError
    from qmtl.sdk import render_html, render_json, render_markdown

    if out is not None and not out.parent.is_dir():
        fail(
            f"--out {out}: folder {out.parent} does not exist (create it first)",
            code=EXIT_BAD_INPUT,
        )
    if rolling_window < 2:
        fail(f"--rolling-window must be at least 2, got {rolling_window}", code=EXIT_BAD_INPUT)
    try:
        sheet = tear_sheet(
            source,
            world=world,
            columns=columns or [],
            benchmark=benchmark,
            periods_per_year=periods_per_year,
            risk_free=risk_free,
            rolling_window=rolling_window,
            log_scale=log_scale,
        )
    except BadReturns as exc:
        fail(f"{source}: {exc}", code=EXIT_BAD_INPUT)
    except AlphaInputError as exc:
        fail(
            f"--{exc.field.replace('_', '-')}: {exc}"
            if exc.field in ("periods_per_year", "risk_free")
            else f"{source}: {exc}",
            code=EXIT_BAD_INPUT,
        )
    chosen = _choose_format(fmt, out)
    renderers = {
        ReportFormat.md: render_markdown,
        ReportFormat.json: render_json,
        ReportFormat.html: render_html,
    }
    text = renderers[chosen](sheet)
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.write_text(text)
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror}", code=EXIT_BAD_INPUT)
    names = ", ".join(report.name for report in sheet.series)
    console.print(
        f"wrote {out} ({chosen.value}; {names}; {sheet.primary.observations} periods)",
        highlight=False,
    )
