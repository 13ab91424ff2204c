"""The gateway does not proxy Arrow IPC yet: an Arrow body is a clear 415 (not a JSON parse
error), and the SDK falls back to JSON rows through it (docs/arrow.md)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from qmtl.contracts import ARROW_STREAM_MEDIA_TYPE, encode_arrow_request
from qmtl.sdk import GatewayClient

from ._support import scaling_request
from .conftest import Stack

pa = pytest.importorskip("pyarrow")


def test_arrow_body_is_415_and_the_sdk_falls_back_to_json(stack: Stack) -> None:
    ws = stack.worldservice(compat=True)
    gw = stack.gateway(ws.url)
    request = scaling_request()
    fields = {k: v for k, v in request.items() if k != "positions"}
    table = pa.Table.from_pylist(request["positions"])
    raw = encode_arrow_request(table, fields)
    for route in ("plan", "apply", "execute"):
        refused = httpx.post(f"{gw.url}/rebalancing/{route}", content=raw,
                             headers={"content-type": ARROW_STREAM_MEDIA_TYPE})
        assert refused.status_code == 415, refused.text
        assert refused.json()["detail"]["code"] == "E_UNSUPPORTED_MEDIA_TYPE"
    expected = httpx.post(f"{gw.url}/rebalancing/plan", json=request).json()

    async def via_sdk() -> dict[str, object]:
        async with GatewayClient(gw.url) as client:
            return await client.plan(fields, positions=table)

    assert asyncio.run(via_sdk()) == expected
