"""The ``rebalancing_planned`` event and its CloudEvents 1.0 envelope (SPEC 2.6, 10).

Encoding and decoding are free functions with their own error (:class:`EventDecodeError`);
consumers route on the CloudEvent ``type`` and deduplicate on ``id``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ._alpha import AlphaCoverage, MetricValues
from ._canonical import canonical_data_json
from ._request import RebalanceIntent
from ._response import OverlayDelta, RebalancePlan
from ._types import Identifier, SchemaVersion, WorldId
from .errors import EventDecodeError

__all__ = [
    "CONTROLBUS_TOPIC_REBALANCING",
    "EVENT_TYPE_REBALANCING_PLANNED",
    "RELAY_EVENT_TYPE_REBALANCING_PLANNED",
    "CloudEvent",
    "RebalancingPlannedData",
    "WorldAlphaSlice",
    "decode_event",
    "encode_event",
    "idempotency_key",
    "parse_rebalancing_planned",
]

EVENT_TYPE_REBALANCING_PLANNED = "rebalancing_planned"
"""CloudEvent ``type`` published by the WorldService on the ControlBus."""
RELAY_EVENT_TYPE_REBALANCING_PLANNED = "rebalancing.planned"
"""CloudEvent ``type`` the gateway sends to WebSocket subscribers."""
CONTROLBUS_TOPIC_REBALANCING = "rebalancing"


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 structured-mode JSON event."""

    model_config = ConfigDict(extra="allow")

    specversion: Literal["1.0"] = "1.0"
    id: Identifier
    source: Identifier
    type: Identifier
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    datacontenttype: str = "application/json"
    data: dict[str, Any]


def _is_none(value: object) -> bool:
    return value is None


class WorldAlphaSlice(BaseModel):
    """This world's part of the alpha envelope: its metrics, its strategies' metrics and,
    when the producer sent one, their ``coverage`` (SPEC 2.4)."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    per_world: dict[str, MetricValues] = Field(default_factory=dict)
    per_strategy: dict[str, dict[str, MetricValues]] = Field(default_factory=dict)
    coverage: AlphaCoverage | None = Field(default=None, exclude_if=_is_none)


class RebalancingPlannedData(BaseModel):
    """``data`` of a ``rebalancing_planned`` event: one world of an applied plan.

    v2-only keys (``alpha_metrics``, ``rebalance_intent``) are absent from a v1 event;
    :func:`parse_rebalancing_planned` rejects a v1 event that carries them and a v2 event
    that lacks them.
    """

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    world_id: WorldId
    plan: RebalancePlan
    version: SchemaVersion
    schema_version: SchemaVersion
    compat_rebalance_v2: bool
    run_id: Identifier
    seq: int = Field(strict=True, ge=1)
    idempotency_key: Identifier
    overlay_deltas: list[OverlayDelta] | None = Field(default=None, exclude_if=_is_none)
    alpha_metrics: WorldAlphaSlice | None = Field(default=None, exclude_if=_is_none)
    rebalance_intent: RebalanceIntent | None = Field(default=None, exclude_if=_is_none)

    @model_validator(mode="after")
    def _version_gated_keys(self) -> RebalancingPlannedData:
        if self.version != self.schema_version:
            raise ValueError("version and schema_version disagree")
        if self.plan.world_id != self.world_id:
            raise ValueError("plan.world_id differs from world_id")
        v2_keys_present = self.alpha_metrics is not None or self.rebalance_intent is not None
        if self.schema_version < 2 and v2_keys_present:
            raise ValueError("a v1 event must not carry alpha_metrics or rebalance_intent")
        if self.schema_version >= 2 and (
            self.alpha_metrics is None or self.rebalance_intent is None
        ):
            raise ValueError("a v2 event must carry alpha_metrics and rebalance_intent")
        return self


def idempotency_key(world_id: str, plan: dict[str, Any], version: int) -> str:
    """``rebalancing_planned:{world_id}:{sha256 of the canonical plan JSON}:{version}``.

    The canonical JSON is ``json.dumps(plan, sort_keys=True, separators=(",", ":"),
    ensure_ascii=False)`` byte for byte (consumers may recompute it), written by
    :func:`canonical_data_json` (a plan is plain JSON data).
    """
    digest = hashlib.sha256(canonical_data_json(plan)).hexdigest()
    return f"{EVENT_TYPE_REBALANCING_PLANNED}:{world_id}:{digest}:{version}"


def encode_event(event: CloudEvent) -> bytes:
    """Structured-mode JSON bytes of ``event``."""
    return event.model_dump_json().encode()


def decode_event(raw: bytes | str | dict[str, Any]) -> CloudEvent:
    """Parse a CloudEvent from JSON bytes/text or an already-decoded mapping.

    Raises:
        EventDecodeError: not JSON, or not a CloudEvents 1.0 envelope.
    """
    try:
        payload = raw if isinstance(raw, dict) else json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EventDecodeError(f"event is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise EventDecodeError("event is not a JSON object")
    try:
        return CloudEvent.model_validate(payload)
    except ValidationError as exc:
        raise EventDecodeError(f"not a CloudEvents 1.0 envelope: {_first_error(exc)}") from exc


def parse_rebalancing_planned(event: CloudEvent) -> RebalancingPlannedData:
    """Validate the ``data`` of a ``rebalancing_planned`` event (v1 or v2).

    Raises:
        EventDecodeError: wrong type, or data that breaks the contract.
    """
    if event.type != EVENT_TYPE_REBALANCING_PLANNED:
        raise EventDecodeError(f"unexpected event type {event.type!r}")
    try:
        return RebalancingPlannedData.model_validate(event.data)
    except ValidationError as exc:
        raise EventDecodeError(
            f"invalid rebalancing_planned data: {_first_error(exc)}", event_id=event.id
        ) from exc


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "(root)"
    return f"{loc}: {err['msg']}"
