"""Arrow IPC plan bodies and answers (``worldservice/arrow.py``): the same plan as the JSON
body, the same 422 list, deltas back as Arrow when asked, 415 without pyarrow."""

from __future__ import annotations

import importlib
import json
from typing import Any

import pyarrow as pa
import pytest

from qmtl.worldservice import arrow

from .conftest import body, make_settings, running

ARROW = {"content-type": arrow.ARROW_STREAM}


def _arrow_body(document: dict[str, Any], *, table: Any = None) -> bytes:
    rest = {k: v for k, v in document.items() if k != "positions"}
    if table is None:
        table = pa.Table.from_pylist(document["positions"])
    table = table.replace_schema_metadata({arrow.REQUEST_METADATA: json.dumps(rest)})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


@pytest.mark.parametrize("version", [1, 2])
async def test_arrow_body_plans_like_json(sqlite_dsn: str, version: int) -> None:
    document = body(schema_version=version)
    async with running(make_settings(sqlite_dsn, compat_rebalance_v2=True)) as ws:
        from_json = await ws.client.post("/rebalancing/plan", json=document)
        from_arrow = await ws.client.post(
            "/rebalancing/plan", content=_arrow_body(document), headers=ARROW
        )
    assert from_json.status_code == 200, from_json.text
    assert from_arrow.status_code == 200, from_arrow.text
    assert from_arrow.json() == from_json.json()
    assert list(from_arrow.json()) == list(from_json.json())


async def test_deltas_come_back_as_arrow_when_accepted(sqlite_dsn: str) -> None:
    document = body(schema_version=2)
    async with running(make_settings(sqlite_dsn, compat_rebalance_v2=True)) as ws:
        expected = (await ws.client.post("/rebalancing/plan", json=document)).json()
        answer = await ws.client.post(
            "/rebalancing/plan",
            content=_arrow_body(document),
            headers={**ARROW, "accept": arrow.ARROW_STREAM},
        )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith(arrow.ARROW_STREAM)
    table = pa.ipc.open_stream(pa.py_buffer(answer.content)).read_all()
    rest = json.loads(table.schema.metadata[arrow.RESPONSE_METADATA])
    rows = table.to_pylist()
    for world_id, plan in expected["per_world"].items():
        mine = [
            {k: v for k, v in r.items() if k != "world_id" and v is not None}
            for r in rows
            if r["world_id"] == world_id
        ]
        assert mine == plan["deltas"]
        plan["deltas"] = []
    global_rows = [
        {k: v for k, v in r.items() if k != "world_id" and v is not None}
        for r in rows
        if r["world_id"] is None
    ]
    assert global_rows == expected["global_deltas"]
    expected["global_deltas"] = []
    assert rest == expected


@pytest.mark.parametrize(
    ("field", "value"), [("mark", -5.0), ("symbol", ""), ("qty", float("nan")), ("world_id", None)]
)
async def test_invalid_positions_give_the_json_422_list(
    sqlite_dsn: str, field: str, value: Any
) -> None:
    document = body()
    document["positions"][1][field] = value
    async with running(make_settings(sqlite_dsn)) as ws:
        from_json = await ws.client.post(
            "/rebalancing/plan",
            content=json.dumps(document).encode(),
            headers={"content-type": "application/json"},
        )
        from_arrow = await ws.client.post(
            "/rebalancing/plan", content=_arrow_body(document), headers=ARROW
        )
    assert from_arrow.status_code == 422
    assert from_arrow.json()["detail"][0]["loc"] == ["body", "positions", 1, field]
    if field != "qty":  # NaN is not JSON: that body is a different document
        assert from_arrow.json() == from_json.json()


async def test_not_an_arrow_stream_is_422(sqlite_dsn: str) -> None:
    async with running(make_settings(sqlite_dsn)) as ws:
        response = await ws.client.post("/rebalancing/plan", content=b"{}", headers=ARROW)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body"]


async def test_without_pyarrow_an_arrow_body_is_415(
    sqlite_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Mock (unit level): pyarrow is installed in the test environment; its absence is
    # simulated by making the import fail.
    real = importlib.import_module

    def without_pyarrow(name: str, package: str | None = None) -> Any:
        if name == "pyarrow":
            raise ImportError("No module named 'pyarrow'")
        return real(name, package)

    monkeypatch.setattr(arrow.importlib, "import_module", without_pyarrow)
    async with running(make_settings(sqlite_dsn)) as ws:
        response = await ws.client.post(
            "/rebalancing/plan", content=_arrow_body(body()), headers=ARROW
        )
    assert response.status_code == 415
    detail = response.json()["detail"]
    assert detail["code"] == "E_UNSUPPORTED_MEDIA_TYPE"
    assert "qmtl-rebalancing[arrow]" in detail["message"]
