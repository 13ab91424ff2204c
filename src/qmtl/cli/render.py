"""What the plan, apply and execute commands show: sections of rows, and the CSV of the rows.

Orders carry a signed ``quantity`` on the wire, with a ``side`` that agrees. People read
``side`` and an unsigned ``size``; showing both a sign and a side doubles the chance of
misreading a sell, so tables and CSV give the side and the size only (JSON keeps the wire).
Deltas have no side: their ``delta_qty`` is signed (+ buys).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from rich.console import Console

from qmtl.cli.tables import Section, fmt, print_sections, to_csv

__all__ = ["orders_csv", "plan_csv", "plan_sections", "print_orders", "print_plan"]

ALPHA_PREFIX = "alpha_performance."
"""Mirrors ``qmtl.contracts.ALPHA_PREFIX``; repeated so tables do not import pydantic models
(``tests/cli/test_render.py`` checks they agree)."""

DELTA_COLUMNS = ("scope", "world_id", "venue", "symbol", "delta_qty")
ORDER_COLUMNS = ("scope", "world_id", "strategy_id", "venue", "symbol", "side", "size",
                 "time_in_force", "reduce_only", "client_order_id")


def _delta_rows(document: Mapping[str, Any]) -> Iterator[tuple[str, str | None, Mapping[str, Any]]]:
    """(scope, world_id, delta) for every delta of a plan: per world, global, overlay."""
    for world_id, plan in (document.get("per_world") or {}).items():
        for delta in plan.get("deltas") or []:
            yield "world", world_id, delta
    for delta in document.get("global_deltas") or []:
        yield "global", None, delta
    for delta in document.get("overlay_deltas") or []:
        yield "overlay", delta.get("world_id"), delta


def plan_sections(document: Mapping[str, Any], *, long_alpha: bool = False) -> list[Section]:
    """The tables of a plan/apply document: worlds, deltas (per scope) and alpha metrics."""
    per_world: Mapping[str, Any] = document.get("per_world") or {}
    worlds = Section("Worlds", ("world", "scale_world", "strategy", "scale"),
                     numeric=frozenset({"scale_world", "scale"}))
    for world_id, plan in per_world.items():
        scales: Any = (plan.get("scale_by_strategy") or {}).items() or [(None, None)]
        for strategy_id, scale in scales:
            worlds.rows.append((world_id, fmt(plan.get("scale_world")), fmt(strategy_id),
                                fmt(scale)))
    sections = [worlds]
    titles = {"world": ("Deltas per world", True), "global": (
        "Global deltas (all worlds netted)", False), "overlay": ("Overlay deltas", True)}
    by_scope: dict[str, Section] = {}
    for scope, delta_world, delta in _delta_rows(document):
        if scope not in by_scope:
            title, with_world = titles[scope]
            columns = ("world", "venue", "symbol", "delta_qty") if with_world else (
                "venue", "symbol", "delta_qty")
            by_scope[scope] = Section(title, columns, numeric=frozenset({"delta_qty"}))
            sections.append(by_scope[scope])
        cells = (fmt(delta.get("venue")), fmt(delta.get("symbol")), fmt(delta.get("delta_qty")))
        by_scope[scope].rows.append(((fmt(delta_world),) if titles[scope][1] else ()) + cells)
    alpha = document.get("alpha_metrics")
    if isinstance(alpha, Mapping):
        sections.append(_alpha_section(alpha, long=long_alpha))
    return sections


def _alpha_section(alpha: Mapping[str, Any], *, long: bool = False) -> Section:
    """Alpha metrics, one row per world/strategy and a column per metric; ``long`` gives one
    row per metric instead (for a terminal too narrow for eight columns)."""
    rows: list[tuple[str, str, Mapping[str, Any]]] = [
        (world_id, "(world)", values) for world_id, values in (alpha.get("per_world") or {}).items()
    ]
    rows += [(world_id, strategy_id, values)
             for strategy_id, by_world in (alpha.get("per_strategy") or {}).items()
             for world_id, values in by_world.items()]
    keys: list[str] = []
    for _, _, values in rows:
        keys.extend(k for k in values if k not in keys)
    names = [k.removeprefix(ALPHA_PREFIX) for k in keys]
    if long:
        section = Section("Alpha metrics", ("world", "strategy", "metric", "value"),
                          numeric=frozenset({"value"}))
        section.rows = [(w, s, name, fmt(values.get(k))) for w, s, values in rows
                        for k, name in zip(keys, names, strict=True) if k in values]
        return section
    section = Section("Alpha metrics", ("world", "strategy", *names), numeric=frozenset(names))
    section.rows = [(w, s, *(fmt(values.get(k)) for k in keys)) for w, s, values in rows]
    return section


WIDE_ALPHA_COLUMNS = 120
"""Terminal width from which the alpha metrics are one row per world/strategy."""


def print_plan(console: Console, document: Mapping[str, Any]) -> None:
    """Print a plan/apply response: a header line, then its tables."""
    header = f"Rebalance plan: schema_version {document.get('schema_version', 1)}"
    if document.get("run_id"):
        header += f", run_id {document['run_id']}, etag {document.get('etag', '')}"
    footer = []
    if "rebalance_intent" in document:
        footer.append(f"rebalance_intent: {json.dumps(document['rebalance_intent'])}")
    narrow = console.is_terminal and console.width < WIDE_ALPHA_COLUMNS
    print_sections(console, [header], plan_sections(document, long_alpha=narrow), footer)


def plan_csv(document: Mapping[str, Any]) -> str:
    """Every delta of a plan as CSV: scope (world|global|overlay), world_id, venue, symbol,
    signed delta_qty."""
    return to_csv(DELTA_COLUMNS, ((scope, world_id, d.get("venue"), d.get("symbol"),
                                   d.get("delta_qty"))
                                  for scope, world_id, d in _delta_rows(document)))


def _orders(document: Mapping[str, Any]
            ) -> Iterator[tuple[str, str | None, str | None, Mapping[str, Any]]]:
    """(scope, world_id, strategy_id, order) for every order of an execute answer."""
    for world_id, orders in (document.get("orders_per_world") or {}).items():
        for order in orders:
            yield "world", world_id, None, order
    for world_id, by_strategy in (document.get("orders_per_strategy") or {}).items():
        for strategy_id, orders in by_strategy.items():
            for order in orders:
                yield "strategy", world_id, strategy_id, order
    for order in document.get("orders_global") or []:
        yield "global", None, None, order


def _size(order: Mapping[str, Any]) -> Any:
    quantity = order.get("quantity")
    return abs(quantity) if isinstance(quantity, int | float) else quantity


def _order_cells(order: Mapping[str, Any]) -> Sequence[Any]:
    return (order.get("venue"), order.get("symbol"), order.get("side"), _size(order),
            order.get("time_in_force"), order.get("reduce_only"), order.get("client_order_id"))


def print_orders(console: Console, document: Mapping[str, Any]) -> None:
    """Print an execute response: one table per world / strategy / shared account."""
    header = (f"Execute: submitted={fmt(document.get('submitted'))}, "
              f"rebalance_schema_version={document.get('rebalance_schema_version')}, "
              f"alpha_metrics_capable={fmt(document.get('alpha_metrics_capable'))}")
    sections: dict[tuple[str, str | None, str | None], Section] = {}
    for scope, world_id, strategy_id, order in _orders(document):
        key = (scope, world_id, strategy_id)
        if key not in sections:
            title = {"world": f"Orders for world {world_id}",
                     "strategy": f"Orders for {world_id} / {strategy_id}",
                     "global": "Orders for the shared account"}[scope]
            sections[key] = Section(title, ORDER_COLUMNS[3:], numeric=frozenset({"size"}))
        sections[key].rows.append(tuple(fmt(v) for v in _order_cells(order)))
    footer = []
    if document.get("shared_account"):
        footer.append(f"shared account: {document['shared_account']}")
    if document.get("batch_ids"):
        footer.append(f"batches: {', '.join(document['batch_ids'])}")
    print_sections(console, [header], sections.values(), footer)


def orders_csv(document: Mapping[str, Any]) -> str:
    """Every order of an execute answer as CSV (side and unsigned size, see the module)."""
    return to_csv(ORDER_COLUMNS, ((scope, world_id, strategy_id, *_order_cells(order))
                                  for scope, world_id, strategy_id, order in _orders(document)))
