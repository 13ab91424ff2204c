"""The v1 fallback happens only when a WorldService refuses the *version* (SPEC 2.5).

Real fake WorldServices (``_legacy``) run under uvicorn and record every request, so each
case counts what reached the WorldService — exactly two requests for a version refusal,
exactly one for anything else — and checks what the caller got.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp

from ._legacy import original_v1_app, pydantic_v1_app, scripted_app
from ._support import Recording, RequestLog, scaling_request
from .conftest import Stack

INTENT = {"meta": {"ticket": "T-1"}}

VERSION_REFUSALS: dict[str, ASGIApp] = {
    "pydantic-v2-extra-forbidden": original_v1_app(),
    "pydantic-v1-extra-fields-not-permitted": pydantic_v1_app(),
    "400-text-unexpected-field": scripted_app(400, "unexpected field schema_version"),
    "400-json-unexpected-field": scripted_app(
        400, {"detail": "unexpected field schema_version"}),
    "400-foreign-code": scripted_app(
        400, {"error": {"code": "invalid_request", "message": "unknown key: schema_version"}}),
    "422-v2-key-unknown": scripted_app(422, {"detail": [
        {"loc": ["body", "rebalance_intent"], "msg": "extra fields not permitted",
         "type": "value_error.extra"}]}),
}

# status, body: answered to the v2 request and relayed to the caller as they came.
RELAYED: dict[str, tuple[int, str | dict[str, Any]]] = {
    "400-coded-world-frozen": (400, {"detail": {"code": "E_WORLD_FROZEN",
                                                "message": "world w1 is frozen"}}),
    "400-schema-version-required": (400, {"detail": {
        "code": "E_SCHEMA_VERSION_REQUIRED", "message": "send schema_version>=2"}}),
    "400-plain-text": (400, "world w1 is frozen"),
    "400-json-text": (400, {"detail": "world w1 is frozen"}),
    "422-free-text-mentions-intent": (422, {"detail": "rebalance_intent: ticket T-1 is closed"}),
    "422-coded": (422, {"detail": {"code": "E_OVERLAY_CONFIG_REQUIRED",
                                   "message": "rebalance_intent needs an overlay"}}),
    "422-inside-alpha-series": (422, {"detail": [
        {"loc": ["body", "alpha_series", "per_world", "w1", "pnl"],
         "msg": "world w1 has no capital base", "type": "value_error"}]}),
    "409": (409, {"detail": {"code": "E_RUN_ID_CONFLICT", "message": "run_id reused"}}),
    "503": (503, {"detail": {"code": "E_STORE_UNAVAILABLE", "message": "store down"}}),
}


def serve(stack: Stack, app: ASGIApp) -> tuple[str, RequestLog]:
    log = RequestLog()
    served = stack.loop.serve(Recording(app, log))
    gw = stack.gateway(served.url, rebalance_schema_version=2, alpha_metrics_capable=True)
    return gw.url, log


@pytest.mark.parametrize("case", sorted(VERSION_REFUSALS))
def test_a_version_refusal_is_retried_once_as_v1(stack: Stack, case: str) -> None:
    url, log = serve(stack, VERSION_REFUSALS[case])
    response = httpx.post(f"{url}/rebalancing/plan",
                          json=scaling_request(rebalance_intent=INTENT), timeout=30)
    assert response.status_code == 200, response.text
    plan = response.json()
    assert plan["schema_version"] == 1
    assert "rebalance_intent" not in plan and "alpha_metrics" not in plan
    # Hand check (scaling_request): w1 0.3 -> 0.2 sells 0.5 of its 1.5 BTC; w2 is unchanged.
    assert [(d["symbol"], d["delta_qty"]) for d in plan["global_deltas"]] == [
        ("BTCUSDT", pytest.approx(-0.5))]
    sent = log.to("/rebalancing/plan")
    assert len(sent) == 2
    assert sent[0].body["schema_version"] == 2 and sent[0].body["rebalance_intent"] == INTENT
    assert not {"schema_version", "rebalance_intent"} & set(sent[1].body)


@pytest.mark.parametrize("case", sorted(RELAYED))
def test_any_other_refusal_is_relayed_unchanged_after_one_request(stack: Stack,
                                                                  case: str) -> None:
    status, body = RELAYED[case]
    url, log = serve(stack, scripted_app(status, body))
    response = httpx.post(f"{url}/rebalancing/plan",
                          json=scaling_request(rebalance_intent=INTENT), timeout=30)
    assert response.status_code == status
    expected = {"detail": body} if isinstance(body, str) else body
    assert response.json() == expected
    sent = log.to("/rebalancing/plan")
    assert len(sent) == 1
    assert sent[0].body["rebalance_intent"] == INTENT
