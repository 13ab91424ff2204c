"""Arrow IPC through the gateway: plan/apply proxied with the version negotiated in the
stream's metadata, Arrow answers relayed only when their envelope has the version sent,
execute refuses Arrow with a clear 415 (docs/arrow.md)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from qmtl.contracts import (
    ARROW_RESPONSE_KEY,
    ARROW_STREAM_MEDIA_TYPE,
    decode_arrow_plan,
    encode_arrow_request,
)
from qmtl.gateway.arrow_proxy import _check_arrow_answer
from qmtl.gateway.served import WorldServiceBadResponse
from qmtl.sdk import GatewayClient

from ._support import scaling_request
from .conftest import Stack

pa = pytest.importorskip("pyarrow")
ARROW = ARROW_STREAM_MEDIA_TYPE


def _arrow(request: dict[str, Any]) -> tuple[bytes, Any, dict[str, Any]]:
    fields = {k: v for k, v in request.items() if k != "positions"}
    table = pa.Table.from_pylist(request["positions"])
    return encode_arrow_request(table, fields), table, fields


def test_plan_and_apply_proxy_arrow_like_json(stack: Stack) -> None:
    ws = stack.worldservice(compat=True)
    gw = stack.gateway(ws.url, rebalance_schema_version=2, alpha_metrics_capable=True)
    request = scaling_request()
    raw, table, fields = _arrow(request)
    expected = httpx.post(f"{gw.url}/rebalancing/plan", json=request)
    answered = httpx.post(
        f"{gw.url}/rebalancing/plan", content=raw, headers={"content-type": ARROW}
    )
    assert answered.status_code == 200, answered.text
    assert answered.json() == expected.json()
    assert answered.json()["schema_version"] == 2

    as_arrow = httpx.post(
        f"{gw.url}/rebalancing/plan", content=raw, headers={"content-type": ARROW, "accept": ARROW}
    )
    assert as_arrow.headers["content-type"] == ARROW
    deltas, envelope = decode_arrow_plan(as_arrow.content)
    assert envelope["schema_version"] == 2 and "alpha_metrics" in envelope
    assert deltas.num_rows == sum(
        len(p["deltas"]) for p in expected.json()["per_world"].values()
    ) + len(expected.json()["global_deltas"])

    raw_apply, _, _ = _arrow(scaling_request(run_id="arrow-gw-1"))
    applied = httpx.post(
        f"{gw.url}/rebalancing/apply", content=raw_apply, headers={"content-type": ARROW}
    )
    assert applied.status_code == 200, applied.text
    assert applied.headers.get("ETag") and applied.json()["run_id"] == "arrow-gw-1"
    replay = httpx.post(
        f"{gw.url}/rebalancing/apply", content=raw_apply, headers={"content-type": ARROW}
    )
    assert replay.headers.get("Idempotent-Replayed") == "true"

    async def via_sdk() -> tuple[dict[str, object], Any, dict[str, Any]]:
        async with GatewayClient(gw.url) as client:
            document = await client.plan(fields, positions=table)
            table_back, envelope_back = await client.plan_table(fields, positions=table)
            return document, table_back, envelope_back

    document, table_back, envelope_back = asyncio.run(via_sdk())
    assert document == expected.json()
    assert table_back.equals(deltas)
    assert envelope_back == envelope


def test_the_gateway_version_cap_is_applied_to_the_metadata(stack: Stack) -> None:
    ws = stack.worldservice(compat=True)
    gw = stack.gateway(ws.url, rebalance_schema_version=1)
    raw, _, _ = _arrow(scaling_request(schema_version=2))
    answer = httpx.post(
        f"{gw.url}/rebalancing/plan", content=raw, headers={"content-type": ARROW, "accept": ARROW}
    )
    assert answer.status_code == 200, answer.text
    _, envelope = decode_arrow_plan(answer.content)
    assert envelope["schema_version"] == 1
    assert "alpha_metrics" not in envelope and "rebalance_intent" not in envelope
    forwarded = ws.requests.to("/rebalancing/plan")[-1].body
    fields = json.loads(pa.ipc.open_stream(forwarded).schema.metadata[b"qmtl.request"])
    assert "schema_version" not in fields  # rewritten to v1: the v2-only keys dropped
    assert fields["total_equity"] == scaling_request()["total_equity"]


def test_execute_refuses_arrow_and_bad_arrow_is_422(stack: Stack) -> None:
    ws = stack.worldservice(compat=True)
    gw = stack.gateway(ws.url)
    raw, _, _ = _arrow(scaling_request())
    refused = httpx.post(
        f"{gw.url}/rebalancing/execute", content=raw, headers={"content-type": ARROW}
    )
    assert refused.status_code == 415, refused.text
    assert refused.json()["detail"]["code"] == "E_UNSUPPORTED_MEDIA_TYPE"
    garbage = httpx.post(
        f"{gw.url}/rebalancing/plan", content=b"not arrow", headers={"content-type": ARROW}
    )
    assert garbage.status_code == 422
    assert garbage.json()["detail"][0]["loc"] == ["body"]
    bad_row = scaling_request()
    bad_row["positions"][0]["mark"] = -1.0
    raw_bad, _, _ = _arrow(bad_row)
    relayed = httpx.post(
        f"{gw.url}/rebalancing/plan", content=raw_bad, headers={"content-type": ARROW}
    )
    assert relayed.status_code == 422
    assert relayed.json()["detail"][0]["loc"] == ["body", "positions", 0, "mark"]


def _answer(envelope: dict[str, Any]) -> bytes:
    table = pa.table(
        {"world_id": pa.array([], pa.string())},
        metadata={ARROW_RESPONSE_KEY: json.dumps(envelope).encode()},
    )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


@pytest.mark.parametrize(
    ("envelope", "sent"),
    [
        ({"schema_version": 2, "per_world": {}}, 1),
        ({"schema_version": 1, "per_world": {}, "alpha_metrics": {}}, 2),
        ({"schema_version": "2", "per_world": {}}, 2),
        ({"per_world": {}}, 2),
    ],
)
def test_a_mis_versioned_arrow_answer_is_never_relayed(envelope: dict[str, Any], sent: int) -> None:
    with pytest.raises(WorldServiceBadResponse):
        _check_arrow_answer(_answer(envelope), sent=sent)
    with pytest.raises(WorldServiceBadResponse):
        _check_arrow_answer(b"garbage", sent=sent)
    _check_arrow_answer(_answer({"schema_version": 1, "per_world": {}}), sent=sent)
