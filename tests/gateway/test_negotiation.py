"""Unit tests of the gateway's version choice, fallback rule and response rendering."""

from __future__ import annotations

import json
from typing import Any

import pytest

from qmtl.contracts import ALPHA_METRIC_KEYS, MultiWorldRebalanceRequest
from qmtl.gateway.negotiation import (
    choose_version,
    error_detail,
    is_version_refusal,
    preferred_version,
)
from qmtl.gateway.outgoing import OutgoingRequest, RequestEnvelope
from qmtl.gateway.served import WorldServiceBadResponse, parse_served_response

from ._support import scaling_request


@pytest.mark.parametrize(
    ("requested", "configured", "expected"),
    [(None, 1, 1), (None, 2, 2), (1, 2, 1), (2, 2, 2), (2, 1, 1), (5, 2, 2)],
)
def test_preferred_version_never_exceeds_the_configured_one(
    requested: int | None, configured: int, expected: int
) -> None:
    assert preferred_version(requested, configured=configured) == expected


@pytest.mark.parametrize(
    ("preferred", "served", "expected"),
    [(2, None, 2), (2, (1,), 1), (2, (1, 2), 2), (1, (1, 2), 1), (1, (2,), 1), (2, (), 2)],
)
def test_choose_version(preferred: int, served: tuple[int, ...] | None, expected: int) -> None:
    assert choose_version(preferred, served=served) == expected


def outgoing(body: dict[str, Any], *, full: bool) -> OutgoingRequest:
    raw = json.dumps(body).encode()
    if full:
        return OutgoingRequest.from_model(raw, MultiWorldRebalanceRequest.model_validate_json(raw))
    return OutgoingRequest.from_envelope(raw, RequestEnvelope.model_validate_json(raw))


@pytest.mark.parametrize("full", [True, False])
def test_v1_body_has_no_v2_key_and_v2_body_carries_the_version(full: bool) -> None:
    request = outgoing(scaling_request(schema_version=2, rebalance_intent={"meta": {"t": 1}},
                                       alpha_series={"per_world": {}}), full=full)
    v1 = json.loads(request.encode(1))
    assert not {"schema_version", "rebalance_intent", "alpha_series"} & set(v1)
    assert v1["positions"] == scaling_request()["positions"]
    v3 = json.loads(request.encode(3))
    assert v3["schema_version"] == 3
    assert v3["rebalance_intent"] == {"meta": {"t": 1}}
    assert "min_trade_notional" not in v1  # no defaults invented on the way


@pytest.mark.parametrize("full", [True, False])
def test_unchanged_bodies_are_forwarded_byte_for_byte(full: bool) -> None:
    plain = outgoing(scaling_request(), full=full)
    assert plain.encode(1) is plain.raw
    declared = outgoing(scaling_request(schema_version=2), full=full)
    assert declared.encode(2) is declared.raw
    assert declared.encode(1) != declared.raw
    # A v1 body asked for at v2 gains the version.
    assert json.loads(plain.encode(2))["schema_version"] == 2


@pytest.mark.parametrize("full", [True, False])
def test_legacy_v1_bodies_carry_the_fields_the_original_requires(full: bool) -> None:
    body = scaling_request(schema_version=2, rebalance_intent={"meta": {}}, run_id="r-1")
    del body["world_alloc_before"], body["positions"]
    request = outgoing(body, full=full)
    sent = json.loads(request.encode(1, legacy=True))
    assert sent["world_alloc_before"] == {} and sent["positions"] == []
    assert not {"schema_version", "rebalance_intent"} & set(sent)
    assert sent["run_id"] == "r-1" and sent["world_alloc_after"] == body["world_alloc_after"]
    # Not legacy (our WorldService fills "before" from its store): nothing is added.
    assert "world_alloc_before" not in json.loads(request.encode(1))
    # At v2 nothing is added either.
    assert "world_alloc_before" not in json.loads(request.encode(2, legacy=True))
    # A complete body is forwarded as it came.
    complete = outgoing(scaling_request(), full=full)
    assert complete.encode(1, legacy=True) is complete.raw


LEGACY_422 = [{"type": "extra_forbidden", "loc": ["body", "schema_version"], "msg": "Extra"}]
OTHER_422 = [{"type": "greater_than", "loc": ["body", "positions", 0, "mark"], "msg": "> 0"}]
PYDANTIC_V1_EXTRA = [{"loc": ["body", "schema_version"], "msg": "extra fields not permitted",
                      "type": "value_error.extra"}]


@pytest.mark.parametrize(
    ("status", "detail", "expected"),
    [
        # Refusals of the version itself: v1 may work.
        (422, LEGACY_422, True),
        (422, PYDANTIC_V1_EXTRA, True),
        (422, [{"loc": ["schema_version"], "msg": "unexpected field", "type": "x"}], True),
        (422, [*OTHER_422, {"type": "extra_forbidden", "loc": ["body", "rebalance_intent"],
                            "msg": "x"}], True),
        (422, [{"type": "value_error.extra", "loc": ["body", "alpha_series"],
                "msg": "extra fields not permitted"}], True),
        (422, [{"type": "custom", "loc": ["body", "alpha_series"],
                "msg": "unexpected field"}], True),
        (422, [{"type": "less_than_equal", "loc": ["body", "schema_version"], "msg": "<= 1"}],
         True),
        (400, {"code": "invalid_request", "message": "unexpected field schema_version"}, True),
        (400, "unexpected field schema_version", True),
        (400, [{"loc": ["schema_version"], "msg": "extra fields not permitted"}], True),
        # Everything else is the caller's answer.
        (422, [{"type": "value_error", "loc": ["body", "alpha_series"], "msg": "bad"}], False),
        (422, [{"type": "extra_forbidden", "loc": ["body", "alpha_series", "per_world", "x"],
                "msg": "Extra inputs are not permitted"}], False),
        (422, OTHER_422, False),
        (422, {"code": "E_OVERLAY_CONFIG_REQUIRED", "message": "overlay needs config"}, False),
        (422, {"code": "E_X", "message": "unknown field schema_version"}, False),
        (422, "unsupported rebalance_intent", False),
        (422, "unexpected field schema_version", False),
        (400, {"code": "E_SCHEMA_VERSION_REQUIRED", "message": "send schema_version>=2"}, False),
        (400, {"code": "E_WORLD_FROZEN", "message": "world w is frozen"}, False),
        (400, {"code": "E_X", "message": "schema_version is not accepted here"}, False),
        (400, {"error": {"code": "E_X", "message": "schema_version is frozen"}}, False),
        (400, "world w is frozen", False),
        (400, {"detail": "bad version"}, False),
        (409, {"code": "E_RUN_ID_CONFLICT"}, False),
        (500, "schema_version", False),
    ],
)
def test_version_refusal_rule(status: int, detail: Any, expected: bool) -> None:
    assert is_version_refusal(status, detail) is expected


def _plan(version: int | None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "per_world": {"w1": {"world_id": "w1", "scale_world": 1.0, "deltas": []}},
        "global_deltas": [],
        **extra,
    }
    if version is not None:
        body["schema_version"] = version
    return body


def parse(doc: Any, *, apply: bool = False) -> tuple[Any, dict[str, Any], int]:
    model, wire, served = parse_served_response(json.dumps(doc).encode(), apply=apply)
    return model, json.loads(wire), served


def test_absent_schema_version_means_v1() -> None:
    _, body, served = parse(_plan(None))
    assert served == 1 and body["schema_version"] == 1


def test_v1_response_never_gains_or_keeps_alpha_metrics() -> None:
    doc = _plan(1, alpha_metrics={"per_world": {"w1": {ALPHA_METRIC_KEYS[0]: 1.0}}},
                rebalance_intent={"meta": {}})
    model, body, served = parse(doc)
    assert served == 1
    assert "alpha_metrics" not in body and "rebalance_intent" not in body
    assert model.alpha_metrics is None


def test_v2_metrics_are_sanitized_and_missing_ones_are_not_invented() -> None:
    sharpe, mdd = ALPHA_METRIC_KEYS[0], ALPHA_METRIC_KEYS[1]
    doc = _plan(2, alpha_metrics={"per_world": {"w1": {sharpe: 1.5, mdd: True, "x.y": 3}},
                                  "per_strategy": {}},
                rebalance_intent={"meta": {"ticket": "T-1"}})
    model, body, served = parse(doc)
    assert served == 2
    assert body["alpha_metrics"]["per_world"] == {"w1": {sharpe: 1.5}}
    assert body["rebalance_intent"] == {"meta": {"ticket": "T-1"}}
    _, bare, _ = parse(_plan(2))
    assert "alpha_metrics" not in bare


def test_apply_response_needs_run_id_and_etag() -> None:
    with pytest.raises(WorldServiceBadResponse) as info:
        parse(_plan(1), apply=True)
    assert info.value.status_code == 502
    _, body, _ = parse(_plan(1, run_id="r", etag="e"), apply=True)
    assert body["run_id"] == "r" and body["etag"] == "e"


@pytest.mark.parametrize("bad", [[], "x", _plan(0), _plan(True), _plan("2"),  # type: ignore[arg-type]
                                 {"per_world": {"w1": {"world_id": "w1"}}}])
def test_malformed_responses_are_502_naming_the_field(bad: Any) -> None:
    with pytest.raises(WorldServiceBadResponse) as info:
        parse(bad)
    assert info.value.code == "E_WORLDSERVICE_BAD_RESPONSE"


def test_non_finite_numbers_in_a_response_are_refused() -> None:
    raw = json.dumps(_plan(1)).replace('"scale_world": 1.0', '"scale_world": Infinity')
    with pytest.raises(WorldServiceBadResponse):
        parse_served_response(raw.encode(), apply=False)
    with pytest.raises(WorldServiceBadResponse):
        parse_served_response(b"<html>oops</html>", apply=False)


def test_a_non_finite_metric_is_dropped_not_fatal() -> None:
    sharpe, mdd = ALPHA_METRIC_KEYS[0], ALPHA_METRIC_KEYS[1]
    raw = json.dumps(_plan(2, alpha_metrics={"per_world": {"w1": {sharpe: 1.0, mdd: 0.5}}}))
    raw = raw.replace("0.5", "NaN")
    _, wire, _ = parse_served_response(raw.encode(), apply=False)
    assert json.loads(wire)["alpha_metrics"]["per_world"] == {"w1": {sharpe: 1.0}}


def test_error_detail_extraction() -> None:
    assert error_detail(b'{"detail": [1]}') == [1]
    assert error_detail(b'{"other": 1}') == {"other": 1}
    assert error_detail(b"<html>bad gateway</html>") == "<html>bad gateway</html>"
