"""``qmtl plan FILE --explain``: the explain document computed locally, as tables or JSON."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table

from qmtl.cli._io import EXIT_BAD_INPUT, OutputFormat, emit, fail, report_qmtl_error
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


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.10g}"
    return "" if value is None else str(value)


def print_explanation(console: Console, document: Mapping[str, Any]) -> None:
    """Print the per-world summary and one row per key that moves."""
    threshold = document.get("min_trade_notional")
    console.print(
        f"[bold]Rebalance explain[/bold]  mode {document.get('mode')}   "
        f"total_equity {_fmt(document.get('total_equity'))}   "
        f"min_trade_notional {_fmt(threshold) or 'off'}"
    )
    worlds = Table(title="Worlds", title_justify="left")
    for column in (
        "world",
        "alloc",
        "scale",
        "net before",
        "net after",
        "gross after",
        "traded",
        "turnover",
    ):
        worlds.add_column(column, justify="left" if column == "world" else "right")
    per_world: Mapping[str, Any] = document.get("per_world") or {}
    for world_id, world in per_world.items():
        worlds.add_row(
            world_id,
            f"{_fmt(world['alloc_before'])} → {_fmt(world['alloc_after'])}",
            _fmt(world["scale_world"]),
            _fmt(world["net_notional_before"]),
            _fmt(world["net_notional_after"]),
            _fmt(world["gross_notional_after"]),
            _fmt(world["traded_notional"]),
            f"{world['turnover']:.4%}",
        )
    console.print(worlds)
    keys = Table(title="Keys (why each delta exists)", title_justify="left")
    for column in _KEY_COLUMNS:
        keys.add_column(
            column,
            justify="left" if column in ("world", "venue", "symbol", "disposition") else "right",
        )
    for world_id, world in per_world.items():
        for key in world.get("keys") or []:
            keys.add_row(world_id, *(_fmt(key.get(c)) for c in _KEY_COLUMNS[1:]))
    if keys.row_count:
        console.print(keys)
    else:
        console.print("(no key moves)")


def explain_command(
    request: MultiWorldRebalanceRequest, *, gateway: str | None, output: OutputFormat
) -> None:
    """The ``--explain`` branch of ``qmtl plan`` (exit 2 on bad input or with --gateway)."""
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
