"""SPEC 2.5 negotiation and the v1/v2 renderer."""

from __future__ import annotations

import pytest

from qmtl.contracts import (
    AlphaMetricsEnvelope,
    MultiWorldRebalanceResponse,
    RebalanceIntent,
    RebalancePlan,
    SymbolDelta,
    best_common_version,
    check_version_config,
    negotiate_schema_version,
    render_response,
    served_schema_versions,
    to_v1_request_body,
)
from qmtl.contracts.errors import ConfigError, SchemaVersionRequired


@pytest.mark.parametrize(
    ("requested", "compat", "served"),
    [
        (None, False, 1),
        (1, False, 1),
        (2, False, 1),
        (3, False, 1),
        (None, True, 1),
        (1, True, 1),
        (2, True, 2),
        (3, True, 2),
    ],
)
def test_served_is_min_of_requested_and_max(
    requested: int | None, compat: bool, served: int
) -> None:
    assert (
        negotiate_schema_version(
            requested, compat_rebalance_v2=compat, alpha_metrics_required=False
        )
        == served
    )


@pytest.mark.parametrize("requested", [None, 1])
def test_required_refuses_below_two_and_names_the_rule(requested: int | None) -> None:
    with pytest.raises(SchemaVersionRequired) as info:
        negotiate_schema_version(requested, compat_rebalance_v2=True, alpha_metrics_required=True)
    assert info.value.status_code == 400
    assert "schema_version>=2" in info.value.message
    assert info.value.to_detail()["code"] == "E_SCHEMA_VERSION_REQUIRED"


def test_required_accepts_two_and_above() -> None:
    assert negotiate_schema_version(3, compat_rebalance_v2=True, alpha_metrics_required=True) == 2


def test_required_without_compat_is_an_invalid_configuration() -> None:
    with pytest.raises(ConfigError, match="compat_rebalance_v2"):
        check_version_config(compat_rebalance_v2=False, alpha_metrics_required=True)
    check_version_config(compat_rebalance_v2=True, alpha_metrics_required=True)
    check_version_config(compat_rebalance_v2=False, alpha_metrics_required=False)


def test_served_versions_and_best_common() -> None:
    assert served_schema_versions(compat_rebalance_v2=False) == [1]
    assert served_schema_versions(compat_rebalance_v2=True) == [1, 2]
    assert best_common_version(2, [1, 2]) == 2
    assert best_common_version(2, [1]) == 1
    assert best_common_version(1, [1, 2]) == 1
    assert best_common_version(2, None) is None
    assert best_common_version(1, [2]) is None


def _response(**extra: object) -> MultiWorldRebalanceResponse:
    plan = RebalancePlan(
        world_id="w1",
        scale_world=0.5,
        scale_by_strategy={"s1": 0.5},
        deltas=[SymbolDelta(symbol="BTC", delta_qty=-0.5)],
    )
    return MultiWorldRebalanceResponse(
        per_world={"w1": plan}, global_deltas=[SymbolDelta(symbol="BTC", delta_qty=-0.5)], **extra
    )  # type: ignore[arg-type]


def test_v1_document_has_no_v2_keys_at_all() -> None:
    body = render_response(
        _response(
            alpha_metrics=AlphaMetricsEnvelope(), rebalance_intent=RebalanceIntent(meta={"t": 1})
        ),
        1,
    )
    assert body["schema_version"] == 1
    assert "alpha_metrics" not in body and "rebalance_intent" not in body
    assert "overlay_deltas" not in body
    assert body["per_world"]["w1"]["deltas"] == [{"symbol": "BTC", "delta_qty": -0.5}]


def test_v2_document_carries_metrics_and_default_intent() -> None:
    body = render_response(_response(alpha_metrics=AlphaMetricsEnvelope()), 2)
    assert body["schema_version"] == 2
    assert body["alpha_metrics"] == {"per_world": {}, "per_strategy": {}}
    assert body["rebalance_intent"] == {"meta": {}}


def test_v2_rendering_without_metrics_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="alpha_metrics"):
        render_response(_response(), 2)


def test_v1_request_body_drops_only_v2_keys() -> None:
    body = {
        "total_equity": 1,
        "world_alloc_after": {},
        "schema_version": 2,
        "rebalance_intent": {"meta": {}},
        "alpha_series": {},
        "run_id": "r1",
        "unknown": 1,
    }
    assert to_v1_request_body(body) == {
        "total_equity": 1,
        "world_alloc_after": {},
        "run_id": "r1",
        "unknown": 1,
    }
