"""Commit-log batches of a submitted execute (SPEC 4).

One batch per (world, scope) of the submitted scope — ``global`` when shared-account netting
was asked for, else ``per_strategy`` when per-strategy orders were, else ``per_world`` — as
the record ``["gateway.rebalance", ts_ms, batch_id, payload]`` with::

    payload = {event: "gateway.rebalance", version: 1 (payload format), world_id, scope,
               strategy_id (per_strategy only), orders, counts, reduce_only_ratio,
               submitted_at, run_id, rebalance_schema_version}

``counts = {orders, buy, sell, reduce_only}`` and ``reduce_only_ratio = reduce_only / orders``
(0.0 for an empty batch). Batches without orders are not written. A global batch has
``world_id = "*"``. Batch ids are derived from the run id when there is one (two gateways
submitting the same run produce the same ids) and random otherwise.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from qmtl.engine import OrderDict
from qmtl.gateway.commitlog import CommitRecord

from .execution import GLOBAL_WORLD, ExecutionOrders

__all__ = ["PAYLOAD_VERSION", "Batch", "plan_batches", "submitted_scope"]

PAYLOAD_VERSION = 1
EVENT = "gateway.rebalance"


@dataclass(frozen=True, slots=True)
class Batch:
    """One batch to write, with what the audit line and the metrics need."""

    record: CommitRecord
    world_id: str
    scope: str
    strategy_id: str | None
    size: int
    reduce_only_ratio: float


def submitted_scope(*, per_strategy: bool, shared_account: bool) -> str:
    if shared_account:
        return "global"
    return "per_strategy" if per_strategy else "per_world"


def _batch_id(run_id: str | None, scope: str, world_id: str, strategy_id: str | None) -> str:
    if run_id is None:
        return "b" + uuid.uuid4().hex
    digest = hashlib.sha256(f"{run_id}|{scope}|{world_id}|{strategy_id or ''}".encode())
    return "b" + digest.hexdigest()[:31]


def _counts(orders: list[OrderDict]) -> tuple[dict[str, int], float]:
    buys = sum(1 for o in orders if o["side"] == "buy")
    reduce_only = sum(1 for o in orders if o.get("reduce_only"))
    counts = {"orders": len(orders), "buy": buys, "sell": len(orders) - buys,
              "reduce_only": reduce_only}
    return counts, (reduce_only / len(orders) if orders else 0.0)


def plan_batches(execution: ExecutionOrders, *, per_strategy: bool, shared_account: bool,
                 run_id: str | None, schema_version: int, now: datetime | None = None
                 ) -> list[Batch]:
    """The batches of the submitted scope, in (world, strategy) order."""
    scope = submitted_scope(per_strategy=per_strategy, shared_account=shared_account)
    moment = now or datetime.now(UTC)
    ts_ms = int(moment.timestamp() * 1000)
    submitted_at = moment.isoformat(timespec="milliseconds")

    groups: list[tuple[str, str | None, list[OrderDict]]]
    if scope == "global":
        groups = [(GLOBAL_WORLD, None, execution.global_orders or [])]
    elif scope == "per_strategy":
        groups = [(w, s, orders)
                  for w, by_strategy in sorted((execution.per_strategy or {}).items())
                  for s, orders in sorted(by_strategy.items())]
    else:
        groups = [(w, None, orders) for w, orders in sorted(execution.per_world.items())]

    batches = []
    for world_id, strategy_id, orders in groups:
        if not orders:
            continue
        counts, ratio = _counts(orders)
        payload: dict[str, Any] = {
            "event": EVENT, "version": PAYLOAD_VERSION, "world_id": world_id, "scope": scope,
        }
        if strategy_id is not None:
            payload["strategy_id"] = strategy_id
        payload.update({
            "orders": orders,  # wire-shaped dicts (see execution.response_body)
            "counts": counts,
            "reduce_only_ratio": ratio,
            "submitted_at": submitted_at,
            "run_id": run_id,
            "rebalance_schema_version": schema_version,
        })
        record = CommitRecord.rebalance(
            ts_ms=ts_ms, batch_id=_batch_id(run_id, scope, world_id, strategy_id),
            payload=payload)
        batches.append(Batch(record=record, world_id=world_id, scope=scope,
                             strategy_id=strategy_id, size=len(orders), reduce_only_ratio=ratio))
    return batches
