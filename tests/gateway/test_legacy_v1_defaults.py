"""v1 toward a legacy WorldService carries every field the original v1 model requires
(SPEC 2.5, issue item 7): ``world_alloc_before`` and ``positions`` are optional in ours,
required there. The strict fake (``_legacy.original_v1_app``: pydantic, required fields,
``extra="forbid"``, no ``/health``) runs under uvicorn and records what it received."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ._legacy import OriginalV1Request, original_v1_app
from ._support import Recording, RequestLog, scaling_request
from .conftest import Stack


def without(*keys: str) -> dict[str, Any]:
    body = scaling_request()
    for key in keys:
        body.pop(key)
    return body


def legacy(stack: Stack, version: int) -> tuple[str, RequestLog]:
    log = RequestLog()
    ws = stack.loop.serve(Recording(original_v1_app(), log))
    gw = stack.gateway(ws.url, rebalance_schema_version=version,
                       alpha_metrics_capable=version >= 2)
    return gw.url, log


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("route", ["plan", "execute"])
def test_a_body_without_the_before_ratios_is_accepted_by_a_strict_v1_server(
        stack: Stack, version: int, route: str) -> None:
    url, log = legacy(stack, version)
    response = httpx.post(f"{url}/rebalancing/{route}", json=without("world_alloc_before"),
                          timeout=30)
    assert response.status_code == 200, response.text
    sent = log.to("/rebalancing/plan")
    # v2 gateway: one refused v2 attempt, then v1; v1 gateway: v1 at once (legacy /health).
    assert len(sent) == (2 if version == 2 else 1)
    accepted = sent[-1].body
    OriginalV1Request.model_validate(accepted)  # what the strict server accepted
    assert accepted["world_alloc_before"] == {}
    assert accepted["positions"] == scaling_request()["positions"]


def test_the_filled_defaults_plan_like_our_worldservice_with_an_empty_store(
        stack: Stack) -> None:
    """Oracle: our own WorldService, whose allocation store is empty, plans a body without
    ``world_alloc_before`` from ``{}`` too — both answers must agree."""
    url, _ = legacy(stack, 2)
    ours = stack.worldservice()
    body = without("world_alloc_before")
    via_legacy = httpx.post(f"{url}/rebalancing/plan", json=body, timeout=30).json()
    direct = httpx.post(f"{ours.url}/rebalancing/plan", json=body, timeout=30).json()
    assert via_legacy["per_world"] == direct["per_world"]
    assert via_legacy["global_deltas"] == direct["global_deltas"]
    # Hand check: every world starts at 0 and ends above 0, so scale 1 and nothing trades.
    assert via_legacy["global_deltas"] == []


@pytest.mark.parametrize("null", [False, True])
def test_missing_or_null_positions_are_sent_as_an_empty_list(stack: Stack, null: bool) -> None:
    url, log = legacy(stack, 1)
    body = without("positions")
    if null:
        body["positions"] = None
    response = httpx.post(f"{url}/rebalancing/plan", json=body, timeout=30)
    assert response.status_code == 200, response.text
    assert log.to("/rebalancing/plan")[-1].body["positions"] == []


def test_our_own_worldservice_keeps_its_store_default(stack: Stack) -> None:
    """Our WorldService lists its versions, so the gateway adds nothing: a null "before"
    is filled from its allocation store, not replaced by ``{}``."""
    ws = stack.worldservice(compat=False)
    gw = stack.gateway(ws.url, rebalance_schema_version=1)
    response = httpx.post(f"{gw.url}/rebalancing/plan", json=without("world_alloc_before"))
    assert response.status_code == 200, response.text
    assert "world_alloc_before" not in ws.requests.to("/rebalancing/plan")[0].body


def test_complete_v1_bodies_reach_a_legacy_worldservice_byte_for_byte(stack: Stack) -> None:
    url, log = legacy(stack, 1)
    body = scaling_request()
    response = httpx.post(f"{url}/rebalancing/plan", json=body, timeout=30)
    assert response.status_code == 200, response.text
    assert log.to("/rebalancing/plan")[0].body == body
