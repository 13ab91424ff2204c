"""SPEC 2: every optional field of every request model accepts ``null``, meaning absent
(older clients serialise unset fields as null), and the JSON Schemas say so."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from qmtl.contracts import (
    AllocationUpsert,
    AlphaSeries,
    MultiWorldRebalanceRequest,
    MultiWorldRebalanceRequestV1,
    OverlayConfig,
    PositionSlice,
    RebalanceIntent,
    Series,
    json_schemas,
)

# A minimal valid body per request model (its required fields only).
MINIMAL: dict[type[BaseModel], dict[str, Any]] = {
    MultiWorldRebalanceRequest: {"total_equity": 1000.0, "world_alloc_after": {"w1": 0.5}},
    MultiWorldRebalanceRequestV1: {"total_equity": 1000.0, "world_alloc_after": {"w1": 0.5}},
    PositionSlice: {"world_id": "w1", "strategy_id": "s1", "symbol": "BTC", "qty": 1.0,
                    "mark": 100.0},
    OverlayConfig: {},
    RebalanceIntent: {},
    Series: {},
    AlphaSeries: {},
    AllocationUpsert: {"world_alloc": {"w1": 0.5}},
}

OPTIONAL_FIELDS = [
    (model, name)
    for model in MINIMAL
    for name, field in model.model_fields.items()
    if not field.is_required()
]


def test_every_request_model_has_optional_fields_listed() -> None:
    names = {f"{model.__name__}.{name}" for model, name in OPTIONAL_FIELDS}
    # The fields the attack found refusing null, among the others.
    assert {"OverlayConfig.min_order_notional", "MultiWorldRebalanceRequest.positions",
            "MultiWorldRebalanceRequest.mode", "RebalanceIntent.meta",
            "AlphaSeries.per_world"} <= names


@pytest.mark.parametrize(("model", "name"), OPTIONAL_FIELDS,
                         ids=[f"{m.__name__}.{n}" for m, n in OPTIONAL_FIELDS])
def test_null_means_absent(model: type[BaseModel], name: str) -> None:
    absent = model.model_validate_json(json.dumps(MINIMAL[model]))
    null = model.model_validate_json(json.dumps({**MINIMAL[model], name: None}))
    assert getattr(null, name) == getattr(absent, name)
    assert null.model_dump() == absent.model_dump()


def test_overlay_min_order_notional_null_is_zero() -> None:
    overlay = OverlayConfig.model_validate_json(
        '{"instrument_by_world": {"w1": "ES"}, "price_by_symbol": {"ES": 10},'
        ' "min_order_notional": null}')
    assert overlay.min_order_notional == 0.0


def _accepts_null(schema: dict[str, Any], defs: dict[str, Any]) -> bool:
    if "$ref" in schema:
        return _accepts_null(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if schema.get("type") == "null":
        return True
    return any(_accepts_null(option, defs) for option in schema.get("anyOf", []))


SCHEMA_OF = {
    MultiWorldRebalanceRequest: "rebalance_request.v2.json",
    MultiWorldRebalanceRequestV1: "rebalance_request.v1.json",
    AllocationUpsert: "allocations_request.json",
}


@pytest.mark.parametrize(("model", "name"), OPTIONAL_FIELDS,
                         ids=[f"{m.__name__}.{n}" for m, n in OPTIONAL_FIELDS])
def test_the_json_schemas_declare_null_for_optional_fields(model: type[BaseModel],
                                                           name: str) -> None:
    schemas = json_schemas()
    schema = schemas["rebalance_request.v2.json"]
    if model in SCHEMA_OF:
        schema = schemas[SCHEMA_OF[model]]
        properties = schema["properties"]
    else:
        properties = schema["$defs"][model.__name__]["properties"]
    assert _accepts_null(properties[name], schema.get("$defs", {})), properties[name]
