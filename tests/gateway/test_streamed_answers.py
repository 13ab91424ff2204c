"""Answers our WorldService announces (``Qmtl-Schema-Version``) are relayed while they
arrive (``gateway.answers``); the last chunk goes out only once the whole document has
passed the relay check, so a caller never reads a complete mis-versioned plan."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Response

from qmtl.contracts import SERVED_VERSION_HEADER

from ._support import scaling_request
from .conftest import Stack
from .test_streamed_proxy import large_request

JSON = {"content-type": "application/json"}


def announcing_worldservice(body: dict[str, Any], *, announce: str) -> FastAPI:
    """A WorldService that lists its versions (so the gateway treats it as ours) and
    answers every plan with ``body``, announcing version ``announce``."""
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "schema_versions": [1, 2], "compat_rebalance_v2": True}

    @app.post("/rebalancing/plan")
    async def plan() -> Response:
        # Padding makes the answer span many chunks, as a real plan does.
        padded = {**body, "per_world": {f"w{i}": {"world_id": f"w{i}", "scale_world": 1.0,
                                                  "scale_by_strategy": {}, "deltas": []}
                                        for i in range(5_000)}}
        return Response(json.dumps(padded, separators=(",", ":")).encode(),
                        media_type="application/json", headers={SERVED_VERSION_HEADER: announce})

    return app


def test_our_answers_are_relayed_whole_with_the_served_version(stack: Stack) -> None:
    ws = stack.worldservice(compat=True)
    gw = stack.gateway(ws.url, rebalance_schema_version=2, alpha_metrics_capable=True)
    raw = json.dumps(large_request(schema_version=2)).encode()
    direct = httpx.post(f"{ws.url}/rebalancing/plan", content=raw, headers=JSON)
    proxied = httpx.post(f"{gw.url}/rebalancing/plan", content=raw, headers=JSON)
    assert proxied.status_code == 200 and proxied.content == direct.content
    assert direct.headers[SERVED_VERSION_HEADER] == proxied.headers[SERVED_VERSION_HEADER] == "2"
    v1 = httpx.post(f"{gw.url}/rebalancing/apply",
                    json=scaling_request(run_id="r-1", schema_version=1))
    assert v1.status_code == 200 and v1.headers[SERVED_VERSION_HEADER] == "1"
    assert "alpha_metrics" not in v1.json() and v1.headers["etag"]


@pytest.mark.parametrize(
    ("body", "announce"),
    [
        # A v2-only key in an answer announced (and labelled) v1.
        ({"schema_version": 1, "global_deltas": [],
          "alpha_metrics": {"per_world": {}, "per_strategy": {}}}, "1"),
        # Announced 2, labelled 1.
        ({"schema_version": 1, "global_deltas": []}, "2"),
        # Not a document the model would write back unchanged (an unknown key).
        ({"schema_version": 2, "global_deltas": [], "alpha_metrics": {"per_world": {},
          "per_strategy": {}}, "rebalance_intent": {"meta": {}}, "extra": 1}, "2"),
    ],
)
def test_a_document_that_fails_the_check_never_arrives_whole(
        stack: Stack, body: dict[str, Any], announce: str,
        caplog: pytest.LogCaptureFixture) -> None:
    served = stack.loop.serve(announcing_worldservice(body, announce=announce))
    gw = stack.gateway(served.url, rebalance_schema_version=2, alpha_metrics_capable=True)
    with caplog.at_level(logging.ERROR), pytest.raises(httpx.RemoteProtocolError):
        # The status and most of the body were sent; the connection closes before the end.
        httpx.post(f"{gw.url}/rebalancing/plan", json=scaling_request(schema_version=2))
    assert any("announced schema_version" in r.getMessage() for r in caplog.records)
    # The gateway keeps serving, and the WorldService is not counted as unwell.
    assert httpx.get(f"{gw.url}/health").status_code == 200
    assert gw.app.state.gateway.client.breaker.state.value == "closed"


def test_an_answer_announcing_a_version_never_sent_is_buffered_and_checked(
        stack: Stack) -> None:
    # Announcing 3 to a request sent at 2 is not believed: the answer is read whole and
    # goes through the usual check (a v1 answer here: re-rendered, no v2 key kept).
    body = {"schema_version": 1, "global_deltas": [],
            "alpha_metrics": {"per_world": {}, "per_strategy": {}}}
    served = stack.loop.serve(announcing_worldservice(body, announce="3"))
    gw = stack.gateway(served.url, rebalance_schema_version=2, alpha_metrics_capable=True)
    response = httpx.post(f"{gw.url}/rebalancing/plan", json=scaling_request(schema_version=2))
    assert response.status_code == 200
    assert response.json()["schema_version"] == 1 and "alpha_metrics" not in response.json()
    assert response.headers[SERVED_VERSION_HEADER] == "1"
