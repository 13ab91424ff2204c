"""``qmtl plan FILE --explain``: the explain document computed locally, as tables or JSON."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console

from qmtl.cli._io import (
    EXIT_BAD_INPUT,
    OutputFormat,
    TabularFormat,
    emit,
    fail,
    report_qmtl_error,
)
from qmtl.cli.tables import Section, fmt, print_sections
from qmtl.contracts import MultiWorldRebalanceRequest
from qmtl.contracts.errors import QmtlError
from qmtl.engine.explain import explain_document

__all__ = ["explain_command", "explain_locally", "print_explanation"]

_KEY_COLUMNS = (
    "world",
    "venue",
    "symbol",
    "raw_move",
    "crossed_qty",
    "lot_residual",
    "mark",
    "final_delta",
    "notional",
    "disposition",
)


def explain_locally(request: MultiWorldRebalanceRequest) -> dict[str, Any]:
    """The explain document of ``request`` as a JSON-ready dict.

    Raises:
        QmtlError: hybrid mode, an incomplete overlay, figures overflowing a float.
    """
    return explain_document(request)


_WORLD_COLUMNS = ("world", "alloc", "scale", "net before", "net after", "gross after",
                  "traded", "turnover")


def explain_sections(document: Mapping[str, Any]) -> list[Section]:
    """The per-world summary and one row per key that moves."""
    per_world: Mapping[str, Any] = document.get("per_world") or {}
    worlds = Section("Worlds", _WORLD_COLUMNS, numeric=frozenset(_WORLD_COLUMNS[2:]))
    keys = Section("Keys (why each delta exists)", _KEY_COLUMNS,
                   numeric=frozenset(_KEY_COLUMNS[3:-1]))
    for world_id, world in per_world.items():
        worlds.rows.append((
            world_id,
            f"{fmt(world['alloc_before'])} → {fmt(world['alloc_after'])}",
            fmt(world["scale_world"]),
            fmt(world["net_notional_before"]),
            fmt(world["net_notional_after"]),
            fmt(world["gross_notional_after"]),
            fmt(world["traded_notional"]),
            f"{world['turnover']:.4%}",
        ))
        keys.rows.extend((world_id, *(fmt(key.get(c)) for c in _KEY_COLUMNS[1:]))
                         for key in world.get("keys") or [])
    return [worlds, keys]


def print_explanation(console: Console, document: Mapping[str, Any]) -> None:
    """Print a header line, the per-world summary and the per-key rows."""
    threshold = document.get("min_trade_notional")
    header = (f"Rebalance explain: mode {document.get('mode')}, "
              f"total_equity {fmt(document.get('total_equity'))}, "
              f"min_trade_notional {fmt(threshold) or 'off'}")
    print_sections(console, [header], explain_sections(document), [])


def explain_command(
    request: MultiWorldRebalanceRequest, *, gateway: str | None,
    output: OutputFormat | TabularFormat,
) -> None:
    """The ``--explain`` branch of ``qmtl plan`` (exit 2 on bad input, with --gateway or csv)."""
    if output == "csv":
        fail("--explain prints a table or JSON (--output table|json)", code=EXIT_BAD_INPUT)
    if gateway is not None:
        fail(
            "--explain plans locally; for a gateway use POST /rebalancing/explain",
            code=EXIT_BAD_INPUT,
        )
    try:
        document = explain_locally(request)
    except QmtlError as exc:
        report_qmtl_error(exc, code=EXIT_BAD_INPUT)
    emit(document, output, table=print_explanation)
