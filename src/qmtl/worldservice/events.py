"""Build the ``rebalancing_planned`` CloudEvents of an applied plan (SPEC 2.6).

One event per world of the plan (overlay mode too). ``data`` carries that world's served
plan, the negotiated version (``version`` = ``schema_version``), the ``compat_rebalance_v2``
flag, the run id, the world's ``seq`` and the idempotency key; overlay mode adds that
world's ``overlay_deltas``; only a v2 event carries ``alpha_metrics`` (this world's slice:
its own metrics and its strategies' metrics for this world) and ``rebalance_intent``.

The events are assembled from the rendered (JSON-ready) response so that an event says
exactly what the apply response said.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from qmtl.contracts import EVENT_TYPE_REBALANCING_PLANNED, idempotency_key
from qmtl.contracts._types import check_identifier
from qmtl.engine.columns import encode_document

__all__ = ["WorldEvent", "alpha_slice", "build_world_events", "encode_world_event",
           "event_time"]


@dataclass(frozen=True, slots=True)
class WorldEvent:
    """A world's event before its ``seq`` is known (the seq is assigned at commit)."""

    event_id: str
    world_id: str
    time: datetime
    data: dict[str, Any]


def _world_part(envelope: Mapping[str, Any], world_id: str) -> dict[str, Any]:
    per_world = envelope.get("per_world", {})
    per_strategy = envelope.get("per_strategy", {})
    return {
        "per_world": {world_id: per_world[world_id]} if world_id in per_world else {},
        "per_strategy": {
            strategy: {world_id: by_world[world_id]}
            for strategy, by_world in per_strategy.items()
            if world_id in by_world
        },
    }


def alpha_slice(alpha_metrics: Mapping[str, Any], world_id: str) -> dict[str, Any]:
    """``{"per_world": {w: …}, "per_strategy": {s: {w: …}}, "coverage": {…}}`` for one world
    ``w``; ``coverage`` (the same shape, cut the same way) only when the envelope has one.

    Strategies are those with an entry for ``w`` in the envelope (the envelope has one for
    every strategy of every planned world).
    """
    sliced = _world_part(alpha_metrics, world_id)
    coverage = alpha_metrics.get("coverage")
    if isinstance(coverage, Mapping):
        sliced["coverage"] = _world_part(coverage, world_id)
    return sliced


def build_world_events(body: Mapping[str, Any], *, version: int, compat_rebalance_v2: bool,
                       run_id: str, now: datetime | None = None) -> list[WorldEvent]:
    """One :class:`WorldEvent` per world of a rendered response ``body``, ordered by world id.

    Args:
        body: the served response (``render_response`` output, without run_id/etag).
        version: the served schema version.
        compat_rebalance_v2: the WorldService flag, carried in every event.
        run_id: the apply's run id.
        now: the event time (UTC now by default).
    """
    when = now or datetime.now(UTC)
    overlay = body.get("overlay_deltas")
    events: list[WorldEvent] = []
    for world_id in sorted(body["per_world"]):
        plan = body["per_world"][world_id]
        data: dict[str, Any] = {
            "world_id": world_id,
            "plan": plan,
            "version": version,
            "schema_version": version,
            "compat_rebalance_v2": compat_rebalance_v2,
            "run_id": run_id,
            "idempotency_key": idempotency_key(world_id, plan, version),
        }
        if overlay is not None:
            data["overlay_deltas"] = [d for d in overlay if d.get("world_id") == world_id]
        if version >= 2:
            data["alpha_metrics"] = alpha_slice(body["alpha_metrics"], world_id)
            data["rebalance_intent"] = body["rebalance_intent"]
        events.append(WorldEvent(event_id=str(uuid.uuid4()), world_id=world_id, time=when,
                                 data=data))
    return events


def event_time(when: datetime) -> str:
    """``when`` as pydantic serialises a ``datetime`` (ISO 8601, ``Z`` for UTC)."""
    text = when.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def encode_world_event(event: WorldEvent, *, seq: int, source: str) -> str:
    """The structured-mode CloudEvents JSON of ``event`` with its ``seq``.

    The document ``encode_event(CloudEvent(...))`` gives — same keys in the same order,
    same values (``tests/worldservice/test_event_encoding.py``) — built as a dict and
    encoded by orjson: no model per event, and the plan inside is not validated a second
    time (it is the served response's, already checked when it was rendered).

    Raises:
        ValueError: ``source`` is not an identifier (the CloudEvent model refused it too).
    """
    return encode_document({
        "specversion": "1.0",
        "id": event.event_id,
        "source": check_identifier(source),
        "type": EVENT_TYPE_REBALANCING_PLANNED,
        "time": event_time(event.time),
        "datacontenttype": "application/json",
        "data": {**event.data, "seq": seq},
    }).decode()
