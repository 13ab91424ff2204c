"""One relayed rebalancing event: its typed view and its validation (SPEC 2.6, 10).

The gateway relays each WorldService ``rebalancing_planned`` event as a CloudEvent of type
``rebalancing.planned`` with a top-level ``seq``. :func:`parse_relay_message` validates it; the
``alpha_metrics`` slice is read tolerantly first (unknown keys and non-numeric or non-finite
values dropped, SPEC 2.4), then the data must satisfy the contract (a v1 event carries no v2
keys, a v2 event carries both).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from qmtl.contracts import (
    EVENT_TYPE_REBALANCING_PLANNED,
    RELAY_EVENT_TYPE_REBALANCING_PLANNED,
    RebalancePlan,
    RebalancingPlannedData,
    WorldAlphaSlice,
    decode_event,
    parse_alpha_metrics,
)
from qmtl.contracts.errors import EventDecodeError

__all__ = ["RebalancingEvent", "parse_relay_message"]

_EVENT_TYPES = frozenset({RELAY_EVENT_TYPE_REBALANCING_PLANNED, EVENT_TYPE_REBALANCING_PLANNED})


@dataclass(frozen=True, slots=True)
class RebalancingEvent:
    """One ``rebalancing.planned`` event relayed by the gateway.

    Attributes:
        seq: the gateway's relay sequence number (resume point).
        id: the CloudEvent id (deduplicate on it across gateways).
        type: the CloudEvent type.
        source: the CloudEvent source.
        world_id: the world this plan belongs to.
        run_id: the apply's run id.
        schema_version: the negotiated plan schema version.
        plan: the world's plan.
        alpha_metrics: this world's alpha slice (v2 events only, else ``None``).
        rebalance_intent: the caller's intent ``meta`` (v2 events only, else ``None``).
        data: the validated event data.
        raw: the message as received.
    """

    seq: int
    id: str
    type: str
    source: str
    world_id: str
    run_id: str
    schema_version: int
    plan: RebalancePlan
    alpha_metrics: WorldAlphaSlice | None
    rebalance_intent: dict[str, Any] | None
    data: RebalancingPlannedData
    raw: dict[str, Any] = field(repr=False)


def parse_relay_message(message: dict[str, Any]) -> RebalancingEvent:
    """Validate one relayed CloudEvent.

    Raises:
        EventDecodeError: not a valid ``rebalancing.planned`` event (the message says why).
    """
    seq = message.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise EventDecodeError(f"relay seq must be an integer >= 1, got {seq!r}")
    event = decode_event(message)
    if event.type not in _EVENT_TYPES:
        raise EventDecodeError(f"unexpected event type {event.type!r}", event_id=event.id)
    payload = dict(event.data)
    if isinstance(payload.get("alpha_metrics"), Mapping):
        # Tolerant reader (SPEC 2.4): unknown keys and non-numeric or non-finite values are
        # dropped, not a reason to reject the whole event.
        envelope = parse_alpha_metrics(payload["alpha_metrics"])
        payload["alpha_metrics"] = envelope.model_dump() if envelope is not None else None
    try:
        data = RebalancingPlannedData.model_validate(payload)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(data)"
        raise EventDecodeError(f"invalid event data: {where}: {err['msg']}",
                               event_id=event.id) from exc
    return RebalancingEvent(
        seq=seq, id=event.id, type=event.type, source=event.source, world_id=data.world_id,
        run_id=data.run_id, schema_version=data.schema_version, plan=data.plan,
        alpha_metrics=data.alpha_metrics,
        rebalance_intent=data.rebalance_intent.meta if data.rebalance_intent else None,
        data=data, raw=message,
    )
