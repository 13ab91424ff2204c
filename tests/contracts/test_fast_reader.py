"""The fast position reader (contracts/_fast.py) is checked against the contract models.

The pydantic models are the one home of the contract. These tests fail when a field or a
rule is added to ``PositionSlice`` (or a request field is read by the fast path) without
the fast reader and the column checks of ``qmtl.engine.columns`` following.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from qmtl.contracts import MultiWorldRebalanceRequest, PositionSlice
from qmtl.contracts._fast import (
    HANDLED_REQUEST_FIELDS,
    POSITION_FIELDS,
    FastPositionRow,
    split_request,
)

# What qmtl.engine.columns enforces per field, in JSON Schema terms (ids: length 1-256 and
# printable, checked by check_identifier; numbers: finite; mark: > 0). Update it together
# with the column checks when PositionSlice's rules change.
_ID = {"maxLength": 256, "minLength": 1, "type": "string"}
ENFORCED: dict[str, dict[str, Any]] = {
    "world_id": _ID,
    "strategy_id": _ID,
    "symbol": _ID,
    "qty": {"type": "number"},
    "mark": {"exclusiveMinimum": 0, "type": "number"},
    "venue": {"anyOf": [_ID, {"type": "null"}], "default": None},
}


def _rules(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k not in ("title", "description")}


def test_position_fields_match_the_model() -> None:
    assert set(PositionSlice.model_fields) == POSITION_FIELDS
    assert set(FastPositionRow.__struct_fields__) == POSITION_FIELDS
    required = set(PositionSlice.model_json_schema()["required"])
    assert required == {f for f in POSITION_FIELDS if f != "venue"}
    assert set(FastPositionRow.__struct_defaults__) == {None}  # only venue has a default


def test_position_rules_match_the_model() -> None:
    properties = PositionSlice.model_json_schema()["properties"]
    assert {name: _rules(schema) for name, schema in properties.items()} == ENFORCED


def test_request_fields_read_by_the_fast_path_exist() -> None:
    assert HANDLED_REQUEST_FIELDS <= set(MultiWorldRebalanceRequest.model_fields)
    # Every other request field is validated by the model itself (split_request).
    assert MultiWorldRebalanceRequest.model_fields["positions"].annotation is not None


def _deep(depth: int) -> bytes:
    return b'{"total_equity": 1, "x": ' + b"[" * depth + b"]" * depth + b"}"


def test_documents_nested_deeper_than_msgspec_goes_are_left_to_pydantic() -> None:
    # msgspec raises RecursionError past its depth limit: the fast readers must decline
    # (the model then answers a 422), not let it escape as a 500.
    from qmtl.engine.columns import decode_request
    from qmtl.gateway.bodies import envelope_document
    from qmtl.gateway.served import relayable_as_is

    deep = _deep(100_000)
    assert split_request(deep) is None
    assert decode_request(deep) is None
    assert envelope_document(deep) is None
    assert relayable_as_is(b'{"schema_version": 1, "per_world": ' + b"[" * 100_000
                           + b"]" * 100_000 + b"}", apply=False) is None


def test_positions_are_read_once_in_chunks_and_their_views_dropped() -> None:
    # A million Raw views are ~60 MB: each chunk's are dropped as it is decoded, so they
    # are not all alive while the columns are built. A second read is an error, not an
    # empty (or partial) book.
    positions = [{"world_id": "w1", "strategy_id": "s1", "symbol": f"S{i}", "qty": i,
                  "mark": 1.5} for i in range(5)]
    split = split_request(json.dumps({"total_equity": 1.0, "world_alloc_after": {"w1": 1.0},
                                      "positions": positions}).encode())
    assert split is not None and len(split) == 5
    chunks = split.chunks(size=2)
    assert [row.symbol for row in next(chunks)] == ["S0", "S1"]
    assert [bytes(item) for item in split.items[:2]] == [b"", b""]  # dropped
    assert json.loads(bytes(split.items[2])) == positions[2]  # not yet read
    assert [[row.qty for row in chunk] for chunk in chunks] == [[2.0, 3.0], [4.0]]
    with pytest.raises(RuntimeError, match="read already"):
        next(split.chunks())
