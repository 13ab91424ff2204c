"""Committed JSON Schemas: no drift, and v2 is a backward-compatible superset of v1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from qmtl.contracts import check_schemas, json_schemas

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"


def test_committed_schemas_match_the_models() -> None:
    drift = check_schemas(SCHEMA_DIR)
    assert drift == [], f"run `uv run qmtl schemas export`; stale: {drift}"


def _resolve(schema: dict[str, Any], node: Any) -> Any:
    """Inline local $refs so two documents can be compared structurally."""
    if isinstance(node, dict):
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            return _resolve(schema, schema["$defs"][name])
        return {
            k: _resolve(schema, v) for k, v in node.items() if k not in ("title", "description")
        }
    if isinstance(node, list):
        return [_resolve(schema, item) for item in node]
    return node


@pytest.mark.parametrize(
    ("v1", "v2"),
    [
        ("rebalance_request.v1.json", "rebalance_request.v2.json"),
        ("rebalance_response.v1.json", "rebalance_response.v2.json"),
        ("apply_response.v1.json", "apply_response.v2.json"),
    ],
)
def test_v2_is_a_backward_compatible_superset(v1: str, v2: str) -> None:
    schemas = json_schemas()
    old, new = schemas[v1], schemas[v2]
    old_props, new_props = old["properties"], new["properties"]
    missing = set(old_props) - set(new_props)
    assert not missing, f"v2 dropped v1 fields {missing}"
    for name in old_props:
        assert _resolve(old, old_props[name]) == _resolve(new, new_props[name]), (
            f"{name} changed type"
        )
    newly_required = set(new.get("required", [])) - set(old.get("required", []))
    assert not newly_required, f"v2 requires new fields {newly_required}"
    assert set(new_props) > set(old_props)


def test_v1_response_schema_has_no_v2_keys() -> None:
    props = json_schemas()["rebalance_response.v1.json"]["properties"]
    assert "alpha_metrics" not in props and "rebalance_intent" not in props
