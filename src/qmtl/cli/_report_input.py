"""Reading ``qmtl report`` input: return columns, dates and a benchmark from CSV or JSON.

CSV: a header names the columns. A ``date`` column (also ``datetime``, ``timestamp``, ``time``,
``day``; ISO dates, strictly increasing) puts dates on the x axis. The strategies are the
``--column`` names, else a ``returns`` column, else every other column. Without a header the
file is one column of returns. JSON: ``{"returns": [...]}`` or ``{"returns": {"name": [...],
...}}``, optionally ``"dates": [...]`` and ``"benchmark": [...]``. Every value must be a finite
number; anything else is :class:`BadReturns` naming the element.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, NoReturn

__all__ = ["BadReturns", "ReturnTable", "load_table", "parse_json_table"]

DATE_COLUMNS = ("date", "datetime", "timestamp", "time", "day")


class BadReturns(ValueError):
    """The input does not hold a usable return series (message names the element)."""


@dataclass(slots=True)
class ReturnTable:
    """Named return columns of equal length, with optional dates and benchmark.

    ``None`` in a column is a missing period (only a request's ``alpha_series`` has them).
    """

    columns: dict[str, list[float | None]]
    dates: list[date] | None = None
    benchmark: tuple[str, list[float | None]] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(next(iter(self.columns.values())))


def _bad(message: str) -> NoReturn:
    raise BadReturns(message)


def _reject_constant(name: str) -> NoReturn:
    _bad(f"{name} is not a valid return (JSON numbers must be finite)")


def _parse_date(text: str) -> date | None:
    """An ISO date, or the date of an ISO timestamp; ``None`` when ``text`` is neither."""
    try:
        return datetime.fromisoformat(text).date()
    except ValueError:
        return None


def _check_increasing(dates: list[date], where: list[str]) -> None:
    for index in range(1, len(dates)):
        if dates[index] <= dates[index - 1]:
            _bad(
                f"{where[index]}: date {dates[index]} is not after {dates[index - 1]} "
                "(dates must be strictly increasing)"
            )


def _json_values(values: Any, name: str) -> list[float | None]:
    if not isinstance(values, list):
        _bad(f'"{name}" must be a list of numbers, got {type(values).__name__}')
    result: list[float | None] = []
    for index, value in enumerate(values):
        if value is None:
            _bad(f"{name}[{index}] is null: every return must be a number")
        if isinstance(value, bool) or not isinstance(value, int | float):
            _bad(
                f"{name}[{index}] is {type(value).__name__} {value!r}: every return must be "
                "a number"
            )
        number = float(value)
        if not math.isfinite(number):
            _bad(f"{name}[{index}] is {number!r}: returns must be finite")
        result.append(number)
    return result


def parse_json(text: str) -> Any:
    """JSON text to Python, refusing NaN/Infinity (as :class:`BadReturns`)."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except BadReturns:
        raise
    except ValueError as exc:
        _bad(f"not valid JSON: {exc}")


def parse_json_table(payload: Any) -> ReturnTable:
    """A ``{"returns": ..., "dates"?: ..., "benchmark"?: ...}`` document as a table."""
    if not isinstance(payload, dict):
        _bad('expected a JSON object {"returns": [...]}')
    if "returns" not in payload:
        _bad('missing "returns": expected {"returns": [...]}')
    raw = payload["returns"]
    if isinstance(raw, dict):
        if not raw:
            _bad('"returns" names no series')
        columns = {str(k): _json_values(v, f"returns.{k}") for k, v in raw.items()}
    else:
        columns = {"returns": _json_values(raw, "returns")}
    table = ReturnTable(columns=columns)
    sizes = {name: len(values) for name, values in columns.items()}
    if len(set(sizes.values())) > 1:
        _bad(f"the return series differ in length: {sizes}")
    if "benchmark" in payload:
        table.benchmark = ("benchmark", _json_values(payload["benchmark"], "benchmark"))
        if len(table.benchmark[1]) != table.size:
            _bad(f"benchmark has {len(table.benchmark[1])} values for {table.size} returns")
    if "dates" in payload:
        table.dates = _json_dates(payload["dates"], table.size)
    return table


def _json_dates(values: Any, size: int) -> list[date]:
    if not isinstance(values, list) or len(values) != size:
        _bad(f'"dates" must be a list of {size} ISO dates, one per return')
    dates = []
    for index, value in enumerate(values):
        parsed = _parse_date(value) if isinstance(value, str) else None
        if parsed is None:
            _bad(f"dates[{index}] is {value!r}: not an ISO date (YYYY-MM-DD)")
        dates.append(parsed)
    _check_increasing(dates, [f"dates[{i}]" for i in range(size)])
    return dates


def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def _csv_column(data: list[tuple[int, list[str]]], index: int, name: str) -> list[float | None]:
    result: list[float | None] = []
    for line, row in data:
        cell = row[index].strip() if index < len(row) else ""
        if not cell:
            _bad(f"line {line}: empty {name} value")
        number = _number(cell)
        if number is None:
            _bad(f"line {line}: {cell!r} is not a number (column {name!r})")
        if not math.isfinite(number):
            _bad(f"line {line}: {cell!r} is not a finite return")
        result.append(number)
    return result


def _csv_dates(data: list[tuple[int, list[str]]], index: int) -> list[date]:
    dates = []
    for line, row in data:
        cell = row[index].strip() if index < len(row) else ""
        parsed = _parse_date(cell)
        if parsed is None:
            _bad(f"line {line}: {cell!r} is not an ISO date (YYYY-MM-DD)")
        dates.append(parsed)
    _check_increasing(dates, [f"line {line}" for line, _ in data])
    return dates


def parse_csv_table(text: str, *, columns: list[str], benchmark: str | None) -> ReturnTable:
    """A CSV file as a table (see the module docstring); ``benchmark`` names a column."""
    rows = [
        (line, row)
        for line, row in enumerate(csv.reader(io.StringIO(text)), 1)
        if any(cell.strip() for cell in row)
    ]
    if not rows:
        _bad("the CSV file is empty")
    header_line, header = rows[0]
    cells = [cell.strip() for cell in header]
    if all(_number(cell) is not None for cell in cells):
        if len(cells) != 1:
            _bad(
                f"line {header_line}: {len(cells)} columns and no header; add a header "
                "naming the columns"
            )
        if columns:
            _bad(f"--column {columns[0]}: the file has no header")
        return ReturnTable(columns={"returns": _csv_column(rows, 0, "returns")})
    names = [cell.lower() for cell in cells]
    data = rows[1:]
    if not data:
        _bad("the CSV file has a header and no data")
    date_index = next((names.index(n) for n in DATE_COLUMNS if n in names), None)
    bench_index = _find(names, benchmark) if benchmark else None
    if columns:
        chosen = [_require(names, cells, name) for name in columns]
    elif "returns" in names:
        chosen = [names.index("returns")]
    else:
        chosen = [i for i in range(len(cells)) if i not in (date_index, bench_index)]
        if not chosen:
            _bad(f"no return column among {cells}")
    table = ReturnTable(columns={cells[i]: _csv_column(data, i, cells[i]) for i in chosen})
    if bench_index is not None:
        table.benchmark = (cells[bench_index], _csv_column(data, bench_index, cells[bench_index]))
    if date_index is not None:
        table.dates = _csv_dates(data, date_index)
    return table


def _find(names: list[str], wanted: str) -> int | None:
    lowered = wanted.lower()
    return names.index(lowered) if lowered in names else None


def _require(names: list[str], cells: list[str], wanted: str) -> int:
    index = _find(names, wanted)
    if index is None:
        _bad(f"--column {wanted}: no such column among {cells}")
    return index


def read_text(path: Path) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        _bad(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}")


def is_json(path: Path, text: str) -> bool:
    suffix = path.suffix.lower()
    return suffix == ".json" or (suffix != ".csv" and text.lstrip()[:1] in ("{", "["))


def load_table(path: Path, *, columns: list[str], benchmark: str | None) -> ReturnTable:
    """Read ``path`` (JSON or CSV by suffix, else by its first character) as a table.

    Raises:
        BadReturns: unreadable file, wrong shape, or a value that is not a finite number.
    """
    text = read_text(path)
    if is_json(path, text):
        if columns:
            _bad('--column applies to CSV input; name JSON series under "returns"')
        payload = parse_json(text)
        if isinstance(payload, dict) and "alpha_series" in payload:
            _bad(
                "this is a rebalance request: pass --world W to report on alpha_series.per_world.W"
            )
        table = parse_json_table(payload)
    else:
        table = parse_csv_table(text, columns=columns, benchmark=benchmark)
    if table.size == 0:
        _bad("no returns in the file")
    return table
