"""Rich tables for plan, apply and execute documents (formatting only, no I/O besides printing)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from qmtl.contracts import ALPHA_METRIC_KEYS, ALPHA_PREFIX

__all__ = ["print_plan", "print_orders"]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.10g}"
    return "" if value is None else str(value)


def _delta_table(
    title: str, deltas: Sequence[Mapping[str, Any]], *, with_world: bool = False
) -> Table:
    table = Table(title=title, title_justify="left")
    if with_world:
        table.add_column("world")
    table.add_column("venue")
    table.add_column("symbol")
    table.add_column("delta_qty", justify="right")
    for delta in deltas:
        row = [_fmt(delta.get("venue")), _fmt(delta.get("symbol")), _fmt(delta.get("delta_qty"))]
        table.add_row(*([_fmt(delta.get("world_id"))] if with_world else []), *row)
    return table


def print_plan(console: Console, document: Mapping[str, Any]) -> None:
    """Print a plan/apply response: worlds, deltas, global deltas, overlay and alpha metrics."""
    header = f"schema_version {document.get('schema_version', 1)}"
    if document.get("run_id"):
        header += f"   run_id {document['run_id']}   etag {document.get('etag', '')}"
    console.print(f"[bold]Rebalance plan[/bold]  {header}")

    worlds = Table(title="Worlds", title_justify="left")
    for column in ("world", "scale_world", "strategy scales", "deltas"):
        worlds.add_column(
            column, justify="right" if column in ("scale_world", "deltas") else "left"
        )
    per_world: Mapping[str, Any] = document.get("per_world") or {}
    for world_id, plan in per_world.items():
        scales = ", ".join(
            f"{s}={_fmt(v)}" for s, v in (plan.get("scale_by_strategy") or {}).items()
        )
        worlds.add_row(
            world_id, _fmt(plan.get("scale_world")), scales, str(len(plan.get("deltas") or []))
        )
    console.print(worlds)

    rows = [dict(d, world_id=w) for w, p in per_world.items() for d in (p.get("deltas") or [])]
    if rows:
        console.print(_delta_table("Deltas per world", rows, with_world=True))
    if document.get("global_deltas"):
        console.print(
            _delta_table("Global deltas (all worlds netted)", document["global_deltas"])
        )
    if document.get("overlay_deltas"):
        console.print(_delta_table("Overlay deltas", document["overlay_deltas"], with_world=True))

    alpha = document.get("alpha_metrics")
    if isinstance(alpha, Mapping):
        table = Table(title="Alpha metrics", title_justify="left")
        table.add_column("world")
        table.add_column("strategy")
        for key in ALPHA_METRIC_KEYS:
            table.add_column(key.removeprefix(ALPHA_PREFIX), justify="right")
        for world_id, values in (alpha.get("per_world") or {}).items():
            table.add_row(world_id, "(world)", *(_fmt(values.get(k)) for k in ALPHA_METRIC_KEYS))
        for strategy_id, by_world in (alpha.get("per_strategy") or {}).items():
            for world_id, values in by_world.items():
                table.add_row(
                    world_id, strategy_id, *(_fmt(values.get(k)) for k in ALPHA_METRIC_KEYS)
                )
        console.print(table)
    if "rebalance_intent" in document:
        console.print(f"rebalance_intent: {document['rebalance_intent']}")


def _orders_table(title: str, orders: Sequence[Mapping[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("venue", "symbol", "side", "quantity", "tif", "reduce_only", "client_order_id"):
        table.add_column(column, justify="right" if column == "quantity" else "left")
    for order in orders:
        table.add_row(
            _fmt(order.get("venue")),
            _fmt(order.get("symbol")),
            _fmt(order.get("side")),
            _fmt(order.get("quantity")),
            _fmt(order.get("time_in_force")),
            _fmt(order.get("reduce_only")),
            _fmt(order.get("client_order_id")),
        )
    return table


def print_orders(console: Console, document: Mapping[str, Any]) -> None:
    """Print an execute response: orders per world / strategy / global and the flags."""
    console.print(
        f"[bold]Execute[/bold]  submitted={document.get('submitted')}  "
        f"rebalance_schema_version={document.get('rebalance_schema_version')}  "
        f"alpha_metrics_capable={document.get('alpha_metrics_capable')}"
    )
    for world_id, orders in (document.get("orders_per_world") or {}).items():
        console.print(_orders_table(f"Orders for world {world_id}", orders))
    for world_id, by_strategy in (document.get("orders_per_strategy") or {}).items():
        for strategy_id, orders in by_strategy.items():
            console.print(_orders_table(f"Orders for {world_id} / {strategy_id}", orders))
    if document.get("orders_global") is not None:
        console.print(_orders_table("Orders for the shared account", document["orders_global"]))
    if document.get("shared_account"):
        console.print(f"shared account: {document['shared_account']}")
    if document.get("batch_ids"):
        console.print(f"batches: {', '.join(document['batch_ids'])}")
