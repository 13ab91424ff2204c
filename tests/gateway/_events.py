"""Building ``rebalancing_planned`` CloudEvents the way the WorldService does (SPEC 2.6)."""

from __future__ import annotations

import uuid
from typing import Any

from qmtl.contracts import (
    ALPHA_METRIC_KEYS,
    CloudEvent,
    encode_event,
    idempotency_key,
    parse_rebalancing_planned,
)


def planned_event(world_id: str = "w1", *, version: int = 1, seq: int = 1,
                  event_id: str | None = None, deltas: int = 1,
                  run_id: str = "run-1") -> CloudEvent:
    """A valid event; ``deltas`` BTC-like deltas make it as large as a test needs."""
    plan: dict[str, Any] = {
        "world_id": world_id, "scale_world": 0.5, "scale_by_strategy": {"s1": 0.5},
        "deltas": [{"symbol": f"SYM{i:05d}", "delta_qty": -0.25, "venue": "binance"}
                   for i in range(deltas)],
    }
    data: dict[str, Any] = {
        "world_id": world_id, "plan": plan, "version": version, "schema_version": version,
        "compat_rebalance_v2": version >= 2, "run_id": run_id, "seq": seq,
        "idempotency_key": idempotency_key(world_id, plan, version),
    }
    if version >= 2:
        data["alpha_metrics"] = {"per_world": {world_id: dict.fromkeys(ALPHA_METRIC_KEYS, 0.5)},
                                 "per_strategy": {"s1": {world_id: {ALPHA_METRIC_KEYS[0]: 1.0}}}}
        data["rebalance_intent"] = {"meta": {"ticket": "T-1"}}
    event = CloudEvent(id=event_id or uuid.uuid4().hex, source="qmtl.worldservice",
                       type="rebalancing_planned", data=data)
    parse_rebalancing_planned(event)  # the helper only builds valid events
    return event


def encoded(event: CloudEvent) -> bytes:
    return encode_event(event)
