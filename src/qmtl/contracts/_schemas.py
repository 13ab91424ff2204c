"""JSON Schemas generated from the wire models, committed under ``schemas/``.

``qmtl schemas export`` writes them; ``qmtl schemas check`` (and a test) fails when the
committed files drift from the models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ._allocations import AllocationState, AllocationUpsert
from ._events import CloudEvent, RebalancingPlannedData
from ._explain import RebalanceExplanation
from ._health import GatewayHealth, WorldServiceHealth
from ._orders import ExecuteResponse
from ._request import MultiWorldRebalanceRequest, MultiWorldRebalanceRequestV1
from ._response import (
    ApplyResponse,
    ApplyResponseV1,
    MultiWorldRebalanceResponse,
    RebalanceResponseV1,
)

__all__ = ["SCHEMA_MODELS", "check_schemas", "export_schemas", "json_schemas"]

SCHEMA_MODELS: dict[str, tuple[type[BaseModel], str]] = {
    "rebalance_request.v1.json": (MultiWorldRebalanceRequestV1, "validation"),
    "rebalance_request.v2.json": (MultiWorldRebalanceRequest, "validation"),
    "rebalance_response.v1.json": (RebalanceResponseV1, "serialization"),
    "rebalance_response.v2.json": (MultiWorldRebalanceResponse, "serialization"),
    "apply_response.v1.json": (ApplyResponseV1, "serialization"),
    "apply_response.v2.json": (ApplyResponse, "serialization"),
    "rebalancing_planned.event.json": (CloudEvent, "serialization"),
    "rebalancing_planned.data.json": (RebalancingPlannedData, "serialization"),
    "execute_response.json": (ExecuteResponse, "serialization"),
    "gateway_health.json": (GatewayHealth, "serialization"),
    "worldservice_health.json": (WorldServiceHealth, "serialization"),
    "allocations_request.json": (AllocationUpsert, "validation"),
    "allocations_state.json": (AllocationState, "serialization"),
    "explain_response.json": (RebalanceExplanation, "serialization"),
}


def json_schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema, generated from the models."""
    out: dict[str, dict[str, Any]] = {}
    for name, (model, mode) in SCHEMA_MODELS.items():
        schema = model.model_json_schema(mode=mode)  # type: ignore[arg-type]
        schema["$id"] = f"https://qmtl.dev/schemas/{name}"
        out[name] = schema
    return out


def _dump(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def export_schemas(directory: Path) -> list[Path]:
    """Write every schema into ``directory``; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in json_schemas().items():
        path = directory / name
        path.write_text(_dump(schema))
        written.append(path)
    return written


def check_schemas(directory: Path) -> list[str]:
    """Names of committed schema files that are missing or differ from the models."""
    drift = []
    for name, schema in json_schemas().items():
        path = directory / name
        if not path.exists() or path.read_text() != _dump(schema):
            drift.append(name)
    return drift
