"""SPEC 2.2 validation: every bad input is an error that names the field."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from qmtl.contracts import MultiWorldRebalanceRequest, RebalanceMode


def _body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "total_equity": 1000.0,
        "world_alloc_before": {"w1": 0.3},
        "world_alloc_after": {"w1": 0.2},
        "positions": [
            {"world_id": "w1", "strategy_id": "s1", "symbol": "BTC", "qty": 1.0, "mark": 100.0}
        ],
    }
    body.update(changes)
    return body


def _position(**changes: Any) -> list[dict[str, Any]]:
    pos: dict[str, Any] = {
        "world_id": "w1",
        "strategy_id": "s1",
        "symbol": "BTC",
        "qty": 1.0,
        "mark": 100.0,
    }
    pos.update(changes)
    return [pos]


def _error_locs(payload: str) -> list[tuple[Any, ...]]:
    with pytest.raises(ValidationError) as info:
        MultiWorldRebalanceRequest.model_validate_json(payload)
    return [tuple(err["loc"]) for err in info.value.errors()]


def test_minimal_request_defaults() -> None:
    request = MultiWorldRebalanceRequest.model_validate(_body())
    assert request.mode is RebalanceMode.SCALING
    assert request.schema_version is None and request.requested_version == 1
    assert request.positions[0].venue is None


def test_unknown_fields_are_ignored() -> None:
    request = MultiWorldRebalanceRequest.model_validate(_body(future_field={"x": 1}))
    assert not hasattr(request, "future_field")


@pytest.mark.parametrize("mode", ["OVERLAY", "Overlay", "overlay"])
def test_mode_is_case_insensitive(mode: str) -> None:
    assert MultiWorldRebalanceRequest.model_validate(_body(mode=mode)).mode is RebalanceMode.OVERLAY


@pytest.mark.parametrize(
    ("raw", "loc"),
    [
        # NaN / Infinity are accepted by Python's json module, so send them as raw JSON text.
        ('{"total_equity": NaN, "world_alloc_after": {}}', ("total_equity",)),
        ('{"total_equity": Infinity, "world_alloc_after": {}}', ("total_equity",)),
        ('{"total_equity": -1, "world_alloc_after": {}}', ("total_equity",)),
        ('{"total_equity": 1, "world_alloc_after": {"w": -Infinity}}', ("world_alloc_after", "w")),
    ],
)
def test_non_finite_and_negative_numbers(raw: str, loc: tuple[str, ...]) -> None:
    assert loc in _error_locs(raw)


@pytest.mark.parametrize(
    ("changes", "loc"),
    [
        ({"positions": _position(mark=0)}, ("positions", 0, "mark")),
        ({"positions": _position(mark=-5.0)}, ("positions", 0, "mark")),
        ({"positions": _position(qty="1")}, ("positions", 0, "qty")),
        ({"positions": _position(qty=True)}, ("positions", 0, "qty")),
        ({"positions": _position(world_id="")}, ("positions", 0, "world_id")),
        ({"positions": _position(strategy_id="   ")}, ("positions", 0, "strategy_id")),
        ({"positions": _position(symbol="")}, ("positions", 0, "symbol")),
        ({"positions": _position(venue="")}, ("positions", 0, "venue")),
        ({"world_alloc_after": {"w1": 1.5}}, ("world_alloc_after", "w1")),
        ({"world_alloc_after": {"w1": 0.6, "w2": 0.5}}, ("world_alloc_after",)),
        ({"world_alloc_before": {"w1": 0.7, "w2": 0.7}}, ("world_alloc_before",)),
        ({"world_alloc_after": {"": 0.1}}, ("world_alloc_after", "", "[key]")),
        ({"mode": "turbo"}, ("mode",)),
        ({"mode": 3}, ("mode",)),
        ({"schema_version": 0}, ("schema_version",)),
        ({"schema_version": "2"}, ("schema_version",)),
        ({"schema_version": True}, ("schema_version",)),
        ({"schema_version": 2.5}, ("schema_version",)),
        ({"schema_version": 2.0}, ("schema_version",)),
        ({"lot_size_by_symbol": {"BTC": 0}}, ("lot_size_by_symbol", "BTC")),
        ({"min_trade_notional": -1}, ("min_trade_notional",)),
        (
            {"strategy_alloc_after_total": {"w1": {"s1": -0.1}}},
            ("strategy_alloc_after_total", "w1", "s1"),
        ),
        ({"overlay": {"price_by_symbol": {"ES": 0}}}, ("overlay", "price_by_symbol", "ES")),
        ({"run_id": ""}, ("run_id",)),
    ],
)
def test_bad_input_names_the_field(changes: dict[str, Any], loc: tuple[Any, ...]) -> None:
    assert loc in _error_locs(json.dumps(_body(**changes)))


def test_missing_required_fields_are_named() -> None:
    locs = _error_locs("{}")
    assert ("total_equity",) in locs and ("world_alloc_after",) in locs


def test_ratio_sum_tolerates_float_noise_only() -> None:
    # 0.1 + 0.2 + 0.7 == 1.0000000000000002 in binary floating point: accepted.
    MultiWorldRebalanceRequest.model_validate(
        _body(world_alloc_after={"a": 0.1, "b": 0.2, "c": 0.7})
    )
    with pytest.raises(ValidationError, match="more than 1"):
        MultiWorldRebalanceRequest.model_validate(
            _body(world_alloc_after={"a": 0.5, "b": 0.500001})
        )


def test_alpha_series_rejects_infinity_but_keeps_null() -> None:
    ok = MultiWorldRebalanceRequest.model_validate(
        _body(alpha_series={"per_world": {"w1": {"returns": [0.1, None, -0.05]}}})
    )
    assert ok.alpha_series is not None
    assert ok.alpha_series.per_world["w1"].returns == [0.1, None, -0.05]
    raw = json.dumps(_body()).replace(
        '"positions"', '"alpha_series": {"per_world": {"w1": {"returns": [Infinity]}}}, "positions"'
    )
    assert ("alpha_series", "per_world", "w1", "returns", 0) in [
        loc[:5] for loc in _error_locs(raw)
    ]
