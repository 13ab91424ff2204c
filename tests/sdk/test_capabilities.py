"""Strict parsing of the gateway's capability bits (pure functions, no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from qmtl.sdk import Capabilities, CapabilityError, parse_capabilities, parse_health


def _health(**top: Any) -> dict[str, Any]:
    return {"status": "ok", **top}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(True, True), (False, False), ("true", True), ("false", False), ("TRUE", True),
     ("False", False), ("1", True), ("0", False), (" true ", True)],
)
def test_booleans_accept_json_bools_and_the_four_strings(raw: Any, expected: bool) -> None:
    caps = parse_capabilities(_health(capabilities={"alpha_metrics_capable": raw,
                                                    "rebalance_schema_version": 2}))
    assert caps.alpha_metrics_capable is expected


@pytest.mark.parametrize("raw", ["yes", "no", "", "2", 1, 0, 1.0, None, [], {}])
def test_any_other_boolean_value_is_an_error_naming_the_key(raw: Any) -> None:
    with pytest.raises(CapabilityError) as info:
        parse_capabilities(_health(capabilities={"alpha_metrics_capable": raw}))
    assert info.value.key == "capabilities.alpha_metrics_capable"
    assert "capabilities.alpha_metrics_capable" in str(info.value)


@pytest.mark.parametrize(("raw", "expected"), [(1, 1), (2, 2), ("2", 2), (" 3 ", 3), ("10", 10)])
def test_versions_accept_ints_and_digit_strings(raw: Any, expected: int) -> None:
    caps = parse_capabilities(_health(capabilities={"rebalance_schema_version": raw}))
    assert caps.rebalance_schema_version == expected


@pytest.mark.parametrize("raw", [True, False, 2.0, 2.5, "v2", "2.0", "", "-1", 0, -2, None, "²"])
def test_any_other_version_is_an_error_naming_the_key(raw: Any) -> None:
    with pytest.raises(CapabilityError) as info:
        parse_capabilities(_health(rebalance_schema_version=raw))
    assert info.value.key == "rebalance_schema_version"


def test_nested_capabilities_win_over_top_level_copies() -> None:
    caps = parse_capabilities(_health(
        capabilities={"rebalance_schema_version": 2, "alpha_metrics_capable": "true"},
        rebalance_schema_version=1, alpha_metrics_capable=False))
    assert (caps.rebalance_schema_version, caps.alpha_metrics_capable) == (2, True)


def test_top_level_copies_are_used_when_the_nested_key_is_missing() -> None:
    caps = parse_capabilities(_health(capabilities={}, rebalance_schema_version="2",
                                      alpha_metrics_capable="1"))
    assert (caps.rebalance_schema_version, caps.alpha_metrics_capable) == (2, True)


def test_an_invalid_nested_value_is_an_error_even_if_the_top_level_copy_is_fine() -> None:
    with pytest.raises(CapabilityError, match="capabilities.rebalance_schema_version"):
        parse_capabilities(_health(capabilities={"rebalance_schema_version": "two"},
                                   rebalance_schema_version=2))


def test_missing_keys_mean_an_older_gateway_v1_and_not_alpha_capable() -> None:
    caps = parse_capabilities({"status": "ok"})
    assert caps == Capabilities()
    assert caps.rebalance_schema_version == 1
    assert caps.alpha_metrics_capable is False
    assert caps.compute_context_contract is None
    # Without the effective key the advertised version is what will be served.
    assert caps.effective_schema_version == 1
    assert not caps.supports_alpha_metrics()


def test_effective_version_wins_when_the_gateway_reports_it() -> None:
    caps = parse_capabilities(_health(
        capabilities={"rebalance_schema_version": 2, "alpha_metrics_capable": True},
        effective_rebalance_schema_version=1))
    assert caps.effective_schema_version == 1
    assert not caps.supports_alpha_metrics()


def test_effective_null_means_unknown_and_features_stay_off() -> None:
    caps = parse_capabilities(_health(
        capabilities={"rebalance_schema_version": 2, "alpha_metrics_capable": True},
        effective_rebalance_schema_version=None))
    assert caps.effective_reported
    assert caps.effective_schema_version is None
    assert not caps.supports_alpha_metrics()


def test_older_gateway_without_effective_key_uses_the_advertised_version() -> None:
    caps = parse_capabilities(_health(rebalance_schema_version=2, alpha_metrics_capable=True))
    assert caps.effective_schema_version == 2
    assert caps.supports_alpha_metrics()


@pytest.mark.parametrize("raw", [2.0, "x", True])
def test_invalid_effective_version_is_an_error(raw: Any) -> None:
    with pytest.raises(CapabilityError, match="effective_rebalance_schema_version"):
        parse_capabilities(_health(effective_rebalance_schema_version=raw))


def test_compute_context_contract_is_a_string_or_absent() -> None:
    assert parse_capabilities(_health(
        capabilities={"compute_context_contract": "cc-v3"})).compute_context_contract == "cc-v3"
    with pytest.raises(CapabilityError, match="compute_context_contract"):
        parse_capabilities(_health(capabilities={"compute_context_contract": 3}))


@pytest.mark.parametrize("document", [[], "ok", None, 3])
def test_a_document_that_is_not_an_object_is_an_error(document: Any) -> None:
    with pytest.raises(CapabilityError):
        parse_capabilities(document)


def test_capabilities_that_is_not_an_object_is_an_error() -> None:
    with pytest.raises(CapabilityError) as info:
        parse_capabilities(_health(capabilities="v2"))
    assert info.value.key == "capabilities"


def test_unreachable_turns_every_feature_off_and_keeps_the_reason() -> None:
    caps = Capabilities.unreachable("cannot connect")
    assert not caps.reachable
    assert caps.reason == "cannot connect"
    assert caps.effective_schema_version is None
    assert not caps.alpha_metrics_capable
    assert not caps.supports_alpha_metrics()


def test_health_view_reads_status_and_components() -> None:
    view = parse_health({"status": "degraded", "worldservice": {"status": "down", "detail": "x"},
                         "controlbus": {"status": "ok"}, "commit_log": "ok",
                         "capabilities": {"rebalance_schema_version": 2,
                                          "alpha_metrics_capable": True}})
    assert view.status == "degraded"
    assert view.components == {"worldservice": "down", "controlbus": "ok", "commit_log": "ok"}
    assert view.capabilities.rebalance_schema_version == 2
