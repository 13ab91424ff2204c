"""SPEC 2.6 events: CloudEvents envelope, version-gated keys, idempotency key."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from qmtl.contracts import (
    CloudEvent,
    decode_event,
    encode_event,
    idempotency_key,
    parse_rebalancing_planned,
)
from qmtl.contracts.errors import EventDecodeError

PLAN = {
    "world_id": "w1",
    "scale_world": 0.5,
    "scale_by_strategy": {"s1": 0.5},
    "deltas": [{"symbol": "BTC", "delta_qty": -0.5}],
}


def _data(served: int, **extra: Any) -> dict[str, Any]:
    data = {
        "world_id": "w1",
        "plan": PLAN,
        "version": served,
        "schema_version": served,
        "compat_rebalance_v2": served >= 2,
        "run_id": "r1",
        "seq": 1,
        "idempotency_key": idempotency_key("w1", PLAN, served),
    }
    data.update(extra)
    return data


def _event(data: dict[str, Any], type_: str = "rebalancing_planned") -> CloudEvent:
    return CloudEvent(id="e1", source="qmtl.worldservice", type=type_, data=data)


def test_idempotency_key_is_sha256_of_canonical_plan() -> None:
    canonical = json.dumps(PLAN, sort_keys=True, separators=(",", ":")).encode()
    expected = f"rebalancing_planned:w1:{hashlib.sha256(canonical).hexdigest()}:2"
    assert idempotency_key("w1", PLAN, 2) == expected
    # Key order in the plan does not change the key.
    assert idempotency_key("w1", dict(reversed(list(PLAN.items()))), 2) == expected


def test_round_trip_is_cloudevents_1_0() -> None:
    event = _event(_data(1))
    raw = json.loads(encode_event(event))
    assert raw["specversion"] == "1.0"
    assert raw["datacontenttype"] == "application/json"
    assert {"id", "source", "type", "time", "data"} <= raw.keys()
    assert decode_event(encode_event(event)) == event


def test_v1_event_parses_without_v2_keys() -> None:
    data = parse_rebalancing_planned(_event(_data(1)))
    assert data.alpha_metrics is None and data.rebalance_intent is None
    assert "alpha_metrics" not in data.model_dump(mode="json")


def test_v2_event_needs_alpha_slice_and_intent() -> None:
    alpha = {"per_world": {"w1": {"alpha_performance.sharpe": 1.0}}, "per_strategy": {}}
    data = parse_rebalancing_planned(
        _event(_data(2, alpha_metrics=alpha, rebalance_intent={"meta": {}}))
    )
    assert data.alpha_metrics is not None
    assert data.alpha_metrics.per_world["w1"]["alpha_performance.sharpe"] == 1.0
    with pytest.raises(EventDecodeError, match="v2 event must carry"):
        parse_rebalancing_planned(_event(_data(2)))


def test_v1_event_with_v2_keys_is_rejected() -> None:
    with pytest.raises(EventDecodeError, match="v1 event must not carry"):
        parse_rebalancing_planned(_event(_data(1, rebalance_intent={"meta": {}})))


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[1, 2]",
        b'{"specversion": "0.3", "id": "e", "source": "s", "type": "t", "data": {}}',
        b'{"specversion": "1.0", "source": "s", "type": "t", "data": {}}',
    ],
)
def test_decode_rejects_non_cloudevents(raw: bytes) -> None:
    with pytest.raises(EventDecodeError):
        decode_event(raw)


@pytest.mark.parametrize(
    "changes",
    [{"seq": 0}, {"seq": "3"}, {"version": 2}, {"world_id": "w2"}, {"run_id": ""}],
)
def test_invalid_data_is_rejected(changes: dict[str, Any]) -> None:
    with pytest.raises(EventDecodeError):
        parse_rebalancing_planned(_event(_data(1, **changes)))


def test_wrong_type_is_rejected() -> None:
    with pytest.raises(EventDecodeError, match="unexpected event type"):
        parse_rebalancing_planned(_event(_data(1), type_="something_else"))
