"""Property: for random and mutated books, the Arrow decoder and the JSON path agree on
accept/reject, on the 422 list (loc, msg, type) and, when accepted, on the plan."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from fastapi.exceptions import RequestValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from qmtl.contracts import MultiWorldRebalanceRequest, encode_arrow_request
from qmtl.contracts.errors import QmtlError
from qmtl.engine import plan_rebalance
from qmtl.engine.arrow_columns import plan_columns
from qmtl.web.bodies import validation_errors
from qmtl.worldservice.arrow_bodies import decode_arrow_request

pa = pytest.importorskip("pyarrow")

SCHEMA = pa.schema(
    [
        ("world_id", pa.string()),
        ("strategy_id", pa.string()),
        ("symbol", pa.string()),
        ("qty", pa.float64()),
        ("mark", pa.float64()),
        ("venue", pa.string()),
    ]
)

ids = st.sampled_from(["w1", "w2", "s1", "s2", "BTC", "ETH", "", " ", "\t", "x\x00y", None])
good_ids = st.sampled_from(["w1", "w2", "w3"])
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -1.0, 1.0, 2.5, 1e308, 5e-324, None]),
)


@st.composite
def position(draw: st.DrawFn) -> dict[str, Any]:
    mutate = draw(st.integers(0, 9)) == 0  # mostly valid rows, some mutated
    return {
        "world_id": draw(ids if mutate else good_ids),
        "strategy_id": draw(ids if mutate else st.sampled_from(["s1", "s2"])),
        "symbol": draw(ids if mutate else st.sampled_from(["BTC", "ETH", "SOL"])),
        "qty": draw(numbers if mutate else st.floats(-100, 100)),
        "mark": draw(numbers if mutate else st.floats(0.5, 1000)),
        "venue": draw(st.one_of(st.none(), ids if mutate else st.sampled_from(["a", "b"]))),
    }


@st.composite
def request_fields(draw: st.DrawFn) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "total_equity": draw(st.sampled_from([1_000_000.0, 0.0, -1.0])),
        "world_alloc_before": {"w1": 0.3, "w2": 0.2},
        "world_alloc_after": draw(
            st.sampled_from([{"w1": 0.2, "w2": 0.3}, {"w1": 0.5}, {"w1": 1.5}])
        ),
        "min_trade_notional": draw(st.sampled_from([None, 0.0, 10.0])),
    }
    return fields


def _json_outcome(request: dict[str, Any]) -> tuple[str, Any]:
    # allow_nan: the JSON body carries the same NaN/Infinity literals the table holds.
    try:
        model = MultiWorldRebalanceRequest.model_validate_json(json.dumps(request, allow_nan=True))
    except ValidationError as exc:
        return "422", validation_errors(exc)
    try:
        return "ok", plan_rebalance(model).model_dump(mode="json")
    except QmtlError as exc:
        return exc.code, exc.context


def _arrow_outcome(request: dict[str, Any]) -> tuple[str, Any]:
    fields = {k: v for k, v in request.items() if k != "positions"}
    raw = encode_arrow_request(pa.Table.from_pylist(request["positions"], schema=SCHEMA), fields)
    try:
        decoded = decode_arrow_request(raw)
    except RequestValidationError as exc:
        return "422", json.loads(json.dumps(list(exc.errors()), default=str))
    try:
        planned = plan_columns(decoded.request, decoded.book)
    except QmtlError as exc:
        return exc.code, exc.context
    return "ok", planned.response().model_dump(mode="json")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fields=request_fields(), positions=st.lists(position(), max_size=12))
def test_arrow_decoder_agrees_with_the_json_path(
    fields: dict[str, Any], positions: list[dict[str, Any]]
) -> None:
    request = {**fields, "positions": positions}
    expected = _json_outcome(request)
    got = _arrow_outcome(request)
    assert got[0] == expected[0], (got, expected)
    if got[0] == "422":
        assert got[1] == json.loads(json.dumps(expected[1], default=str))
    else:
        assert got[1] == expected[1]


def test_nan_is_refused_on_both_paths() -> None:
    request = {
        "total_equity": 1.0,
        "world_alloc_after": {"w1": 1.0},
        "positions": [
            {"world_id": "w1", "strategy_id": "s", "symbol": "A", "qty": 1.0, "mark": math.nan}
        ],
    }
    assert _arrow_outcome(request) == (
        "422",
        [
            {
                "type": "finite_number",
                "loc": ["body", "positions", 0, "mark"],
                "msg": "Input should be a finite number",
            }
        ],
    )
