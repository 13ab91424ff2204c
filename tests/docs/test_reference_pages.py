"""The contract, error-code and metrics pages name everything the code defines."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

import qmtl.contracts as c
from qmtl.contracts import errors

from ._markdown import DOCS, ROOT

CONTRACT_PAGES = [DOCS / "contract.md", DOCS / "ko" / "contract.md"]

WIRE_MODELS: list[type[BaseModel]] = [
    c.PositionSlice, c.OverlayConfig, c.RebalanceIntent, c.Series, c.AlphaSeries,
    c.MultiWorldRebalanceRequest, c.SymbolDelta, c.OverlayDelta, c.RebalancePlan,
    c.MultiWorldRebalanceResponse, c.ApplyResponse, c.AlphaMetricsEnvelope, c.AlphaCoverage,
    c.SeriesCoverage, c.CloudEvent,
    c.RebalancingPlannedData, c.WorldAlphaSlice, c.Order, c.SharedAccountSummary,
    c.ExecuteResponse, c.GatewayHealth, c.GatewayCapabilities, c.WorldServiceHealth,
    c.ComponentHealth, c.OutboxHealth, c.AllocationUpsert, c.AllocationState,
    c.WorldAllocation, c.AuditEntry, c.WorldAudit,
    c.RebalanceExplanation, c.WorldExplanation, c.KeyExplanation,
]


def _fields() -> list[tuple[str, str]]:
    return [(model.__name__, name) for model in WIRE_MODELS for name in model.model_fields]


@pytest.mark.parametrize("page", CONTRACT_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_contract_page_names_every_wire_field(page: Path) -> None:
    text = page.read_text()
    missing = [f"{model}.{name}" for model, name in _fields() if f"`{name}`" not in text]
    assert missing == []


def test_the_wire_model_list_covers_every_schema_model() -> None:
    # A model published as a JSON Schema must be documented field by field too.
    schema_models = {model for model, _ in c.SCHEMA_MODELS.values()}
    covered = set(WIRE_MODELS) | {c.MultiWorldRebalanceRequestV1, c.RebalanceResponseV1,
                                  c.ApplyResponseV1}
    assert schema_models <= covered


@pytest.mark.parametrize("page, prefix", [(DOCS / "contract.md", "schemas/"),
                                          (DOCS / "ko" / "contract.md", "../schemas/")],
                         ids=["en", "ko"])
def test_every_schema_file_is_linked(page: Path, prefix: str) -> None:
    text = page.read_text()
    committed = sorted(p.name for p in (ROOT / "schemas").glob("*.json"))
    assert committed, "schemas/ is empty"
    assert set(committed) == set(c.SCHEMA_MODELS)
    missing = [name for name in committed if f"]({prefix}{name})" not in text]
    assert missing == []


def _http_codes() -> set[str]:
    # Importing both apps loads every module that defines an error (e.g. the gateway's
    # E_WORLDSERVICE_BAD_RESPONSE), wherever it lives.
    import qmtl.gateway.app  # noqa: F401
    import qmtl.worldservice.app  # noqa: F401

    def walk(cls: type[errors.QmtlError]) -> set[str]:
        found = {cls.code}
        for sub in cls.__subclasses__():
            found |= walk(sub)
        return found

    codes = walk(errors.QmtlError)
    assert "E_WORLDSERVICE_BAD_RESPONSE" in codes
    return codes - {errors.ServiceUnavailable.code}  # abstract: never sent


def _ws_codes() -> set[str]:
    source = (ROOT / "src" / "qmtl" / "gateway" / "ws_session.py").read_text()
    return set(re.findall(r'"(E_WS_[A-Z_]+)"', source))


def test_error_codes_page_lists_every_code() -> None:
    text = (DOCS / "errors.md").read_text()
    codes = _http_codes() | _ws_codes()
    assert len(codes) > 25
    assert sorted(code for code in codes if f"`{code}`" not in text) == []


@pytest.mark.parametrize("page", CONTRACT_PAGES, ids=["en", "ko"])
def test_contract_page_lists_every_spec_error_and_websocket_code(page: Path) -> None:
    text = page.read_text()
    spec_codes = {  # SPEC §8, written out by hand
        "E_SCHEMA_VERSION_REQUIRED", "E_UNAUTHORIZED", "E_PERMISSION_DENIED",
        "E_SHARED_ACCOUNT_DISABLED", "E_RUN_ID_CONFLICT", "E_ETAG_MISMATCH",
        "E_PAYLOAD_TOO_LARGE", "E_OVERLAY_CONFIG_REQUIRED", "E_OVERLAY_CONFIG_INVALID",
        "E_SHARED_ACCOUNT_POLICY", "E_OVERLAY_EXECUTION_AMBIGUOUS", "E_OVERLAY_EXECUTION_UNMAPPED",
        "E_REBALANCE_MODE_UNSUPPORTED", "E_STORE_UNAVAILABLE", "E_WORLDSERVICE_UNAVAILABLE",
        "E_COMMITLOG_UNAVAILABLE", "E_WORLDSERVICE_TIMEOUT",
    }
    assert sorted(code for code in spec_codes | _ws_codes() if f"`{code}`" not in text) == []


def _metric_names() -> set[str]:
    from qmtl.gateway.metrics import GatewayMetrics
    from qmtl.sdk import AlphaPerformanceGauges
    from qmtl.worldservice.metrics import WorldServiceMetrics

    registry = CollectorRegistry()
    GatewayMetrics(registry)
    WorldServiceMetrics(registry)
    AlphaPerformanceGauges(registry)
    names = set()
    for family in registry.collect():
        names.add(f"{family.name}_total" if family.type == "counter" else family.name)
    return names


def test_metrics_page_lists_every_metric() -> None:
    text = (DOCS / "operations" / "metrics.md").read_text()
    names = _metric_names()
    assert {"rebalance_batches_submitted_total", "rebalance_last_batch_size",
            "rebalance_reduce_only_ratio", "rebalance_plans_observed_total",
            "rebalance_plan_last_delta_count"} <= names  # SPEC §4
    assert sorted(n for n in names if f"`{n}`" not in text) == []


METRIC_PAGES = [DOCS / "sdk.md", DOCS / "ko" / "sdk.md", DOCS / "reference" / "report.md",
                DOCS / "ko" / "reference" / "report.md", DOCS / "contract.md",
                DOCS / "ko" / "contract.md"]


@pytest.mark.parametrize("page", METRIC_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_metric_keys_and_units_are_documented(page: Path) -> None:
    # Each key is a row of a table with its definition, unit and undefined case (≥ 4 cells).
    rows = [line for line in page.read_text().splitlines() if line.startswith("|")]
    for key in c.ALPHA_METRIC_KEYS:
        matching = [r for r in rows if f"`{key}`" in r]
        assert matching, f"{page.name}: no table row for {key}"
        assert any(r.count("|") >= 5 for r in matching), f"{page.name}: {key} row lacks columns"
