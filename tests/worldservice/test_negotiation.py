"""SPEC 2.5: flags (compat × required) × requested version → status, served version and
the presence of the v2-only keys, for plan and apply."""

from __future__ import annotations

from typing import Any

import pytest

from qmtl.contracts.errors import ConfigError
from qmtl.worldservice.config import load_settings

from .conftest import body, make_settings, running

MISSING = object()

# (compat_rebalance_v2, alpha_metrics_required, requested) -> (status, served version or code)
TABLE: list[tuple[bool, bool, Any, int, Any]] = [
    # compat off, required off: everything is served as v1
    (False, False, MISSING, 200, 1),
    (False, False, 1, 200, 1),
    (False, False, 2, 200, 1),
    (False, False, 3, 200, 1),
    (False, False, 0, 422, "schema_version"),
    # compat on, required off: min(requested or 1, 2)
    (True, False, MISSING, 200, 1),
    (True, False, 1, 200, 1),
    (True, False, 2, 200, 2),
    (True, False, 3, 200, 2),
    (True, False, 0, 422, "schema_version"),
    # compat on, required on: below 2 is refused with 400
    (True, True, MISSING, 400, "E_SCHEMA_VERSION_REQUIRED"),
    (True, True, 1, 400, "E_SCHEMA_VERSION_REQUIRED"),
    (True, True, 2, 200, 2),
    (True, True, 3, 200, 2),
    (True, True, 0, 422, "schema_version"),
]


def _request(requested: Any) -> dict[str, Any]:
    changes: dict[str, Any] = {"rebalance_intent": {"meta": {"ticket": "DESK-1"}}}
    if requested is not MISSING:
        changes["schema_version"] = requested
    return body(**changes)


@pytest.mark.parametrize("endpoint", ["/rebalancing/plan", "/rebalancing/apply"])
@pytest.mark.parametrize(("compat", "required", "requested", "status", "expected"), TABLE)
async def test_negotiation_table(sqlite_dsn: str, endpoint: str, compat: bool, required: bool,
                                 requested: Any, status: int, expected: Any) -> None:
    settings = make_settings(sqlite_dsn, compat_rebalance_v2=compat,
                             alpha_metrics_required=required)
    async with running(settings) as ws:
        response = await ws.client.post(endpoint, json=_request(requested))
    assert response.status_code == status, response.text
    payload = response.json()
    if status == 200:
        assert payload["schema_version"] == expected
        if expected == 1:
            assert "alpha_metrics" not in payload
            assert "rebalance_intent" not in payload
        else:
            assert set(payload["alpha_metrics"]) == {"per_world", "per_strategy", "coverage"}
            assert payload["rebalance_intent"] == {"meta": {"ticket": "DESK-1"}}
        if endpoint.endswith("apply"):
            assert payload["run_id"] and payload["etag"]
    elif status == 400:
        assert payload["detail"]["code"] == expected
        assert "schema_version>=2" in payload["detail"]["message"]
    else:
        assert any(err["loc"] == ["body", expected] for err in payload["detail"])


async def test_v2_without_intent_serves_empty_meta(sqlite_dsn: str) -> None:
    async with running(make_settings(sqlite_dsn, compat_rebalance_v2=True)) as ws:
        response = await ws.client.post("/rebalancing/plan", json=body(schema_version=2))
    assert response.json()["rebalance_intent"] == {"meta": {}}


def test_required_without_compat_refuses_to_start() -> None:
    with pytest.raises(ConfigError, match="compat_rebalance_v2"):
        load_settings(environ={"QMTL__WORLDSERVICE__SERVER__ALPHA_METRICS_REQUIRED": "true",
                               "QMTL__WORLDSERVICE__SERVER__COMPAT_REBALANCE_V2": "false"})


@pytest.mark.parametrize(("compat", "required", "versions"),
                         [(False, False, [1]), (True, False, [1, 2]), (True, True, [1, 2])])
async def test_health_reports_versions_and_flags(sqlite_dsn: str, compat: bool, required: bool,
                                                 versions: list[int]) -> None:
    settings = make_settings(sqlite_dsn, compat_rebalance_v2=compat,
                             alpha_metrics_required=required)
    async with running(settings) as ws:
        health = (await ws.client.get("/health")).json()
    assert health["schema_versions"] == versions
    assert health["compat_rebalance_v2"] is compat
    assert health["alpha_metrics_required"] is required
