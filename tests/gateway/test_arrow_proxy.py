"""Arrow IPC plan bodies and answers pass through the gateway (``gateway/arrow.py``):
the envelope is read from the schema metadata, rewritten when the version changes, and
an Arrow answer is relayed when its metadata document is well versioned."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pyarrow as pa
import pytest

from qmtl.contracts import ARROW_REQUEST_METADATA, ARROW_RESPONSE_METADATA, ARROW_STREAM

from ._support import scaling_request
from .conftest import Stack


def _arrow(document: dict[str, Any]) -> bytes:
    rest = {k: v for k, v in document.items() if k != "positions"}
    table = pa.Table.from_pylist(document["positions"])
    table = table.replace_schema_metadata({ARROW_REQUEST_METADATA: json.dumps(rest)})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


@pytest.mark.parametrize(
    ("declared", "gateway_version", "served"), [(2, 2, 2), (None, 2, 2), (2, 1, 1)]
)
def test_arrow_plan_through_the_gateway(
    stack: Stack, declared: int | None, gateway_version: int, served: int
) -> None:
    ws = stack.worldservice(compat=True)
    gw = stack.gateway(
        ws.url, rebalance_schema_version=gateway_version, alpha_metrics_capable=gateway_version >= 2
    )
    document = scaling_request(**({"schema_version": declared} if declared else {}))
    as_json = httpx.post(f"{gw.url}/rebalancing/plan", json=document)
    assert as_json.status_code == 200, as_json.text
    answer = httpx.post(
        f"{gw.url}/rebalancing/plan",
        content=_arrow(document),
        headers={"content-type": ARROW_STREAM},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == as_json.json()
    assert answer.json()["schema_version"] == served
    arrow_answer = httpx.post(
        f"{gw.url}/rebalancing/plan",
        content=_arrow(document),
        headers={"content-type": ARROW_STREAM, "accept": ARROW_STREAM},
    )
    assert arrow_answer.status_code == 200
    assert arrow_answer.headers["content-type"].startswith(ARROW_STREAM)
    table = pa.ipc.open_stream(pa.py_buffer(arrow_answer.content)).read_all()
    rest = json.loads(table.schema.metadata[ARROW_RESPONSE_METADATA])
    assert rest["schema_version"] == served
    expected = as_json.json()
    assert table.num_rows == (
        sum(len(p["deltas"]) for p in expected["per_world"].values())
        + len(expected["global_deltas"])
    )


def test_not_an_arrow_stream_is_422_at_the_gateway(stack: Stack) -> None:
    ws = stack.worldservice(compat=True)
    gw = stack.gateway(ws.url)
    answer = httpx.post(
        f"{gw.url}/rebalancing/plan", content=b"{}", headers={"content-type": ARROW_STREAM}
    )
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body"]
