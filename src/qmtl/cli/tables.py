"""Tables that never hide data: rich tables on a terminal, tab-separated lines when piped.

On a terminal every column folds long values onto more lines instead of cutting them with
an ellipsis (world ids and option names must stay readable at 80 columns). When stdout is
not a terminal, or the tables hold more than :data:`RICH_ROW_LIMIT` rows, the same rows are
written as ``# title`` followed by tab-separated lines, so ``grep``, ``cut`` and ``awk`` see
every value in full. ``--output csv`` writes the rows of
the commands that have them (deltas, orders) with :func:`to_csv`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["RICH_ROW_LIMIT", "Section", "fmt", "print_sections", "to_csv"]

RICH_ROW_LIMIT = 2_000
"""Rows above which even a terminal gets the plain form: rich lays out every cell (about half
a millisecond a row), so a 15,000-delta plan would take seconds to draw boxes nobody reads."""


def fmt(value: Any) -> str:
    """A cell: floats to 10 significant digits, booleans in JSON spelling, None as empty."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.10g}"
    return "" if value is None else str(value)


@dataclass
class Section:
    """One titled table: column names, rows of cells, and the right-aligned columns."""

    title: str
    columns: Sequence[str]
    rows: list[Sequence[str]] = field(default_factory=list)
    numeric: frozenset[str] = frozenset()


def _rich_table(section: Section) -> Table:
    table = Table(title=section.title, title_justify="left")
    for column in section.columns:
        table.add_column(column, overflow="fold",
                         justify="right" if column in section.numeric else "left")
    for row in section.rows:
        table.add_row(*row)
    return table


def _plain(text: str) -> str:
    # A tab or newline inside a value would break the columns of the plain form.
    return text.replace("\t", " ").replace("\n", " ")


def print_sections(console: Console, header: Iterable[str], sections: Iterable[Section],
                   footer: Iterable[str] = ()) -> None:
    """Print header lines, the sections, then footer lines (rich or plain, see the module)."""
    sections = list(sections)
    if console.is_terminal and sum(len(s.rows) for s in sections) <= RICH_ROW_LIMIT:
        for line in header:
            console.print(line, highlight=False, markup=False, soft_wrap=True)
        for section in sections:
            console.print(_rich_table(section))
        for line in footer:
            console.print(line, highlight=False, markup=False, soft_wrap=True)
        return
    out: list[str] = list(header)
    for section in sections:
        out.append("")
        out.append(f"# {section.title}")
        out.append("\t".join(section.columns))
        out.extend("\t".join(_plain(cell) for cell in row) for row in section.rows)
    if footer:
        out.append("")
        out.extend(footer)
    console.file.write("\n".join(out) + "\n")
    console.file.flush()


def to_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """RFC 4180 CSV with a header line; numbers are written in full (repr), None as empty."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if v is None else (str(v).lower() if isinstance(v, bool) else v)
                         for v in row])
    return buffer.getvalue()
