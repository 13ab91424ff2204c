"""Arrow IPC on ``POST /rebalancing/plan`` and ``/apply``: the same plan and the same 422 list
as the JSON path on the same data, Arrow answers when ``Accept`` asks, 415 otherwise."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from qmtl.contracts import (
    ARROW_STREAM_MEDIA_TYPE,
    decode_arrow_plan,
    encode_arrow_request,
)

from .conftest import body, make_settings, running

pa = pytest.importorskip("pyarrow")

ARROW = {"content-type": ARROW_STREAM_MEDIA_TYPE}


def arrow_body(request: dict[str, Any], *, schema: Any = None) -> bytes:
    fields = {k: v for k, v in request.items() if k != "positions"}
    table = pa.Table.from_pylist(request["positions"], schema=schema)
    return encode_arrow_request(table, fields)


def json_bytes(request: dict[str, Any]) -> bytes:
    # allow_nan: the JSON path must see the same NaN the Arrow table carries.
    return json.dumps(request, allow_nan=True).encode()


POSITION_SCHEMA = None  # inferred by pyarrow from the rows (strings, doubles)


def _deltas(document: dict[str, Any]) -> list[tuple[Any, ...]]:
    rows = [
        (world, d.get("venue"), d["symbol"], d["delta_qty"])
        for world, plan in document["per_world"].items()
        for d in plan["deltas"]
    ]
    rows += [(None, d.get("venue"), d["symbol"], d["delta_qty"]) for d in document["global_deltas"]]
    return rows


@pytest.mark.parametrize("schema_version", [1, 2])
async def test_arrow_body_plans_like_json(sqlite_dsn: str, schema_version: int) -> None:
    request = body(schema_version=schema_version, rebalance_intent={"meta": {"ticket": "T-1"}})
    async with running(make_settings(sqlite_dsn, compat_rebalance_v2=True)) as ws:
        from_json = await ws.client.post("/rebalancing/plan", json=request)
        from_arrow = await ws.client.post(
            "/rebalancing/plan", content=arrow_body(request), headers=ARROW
        )
    assert from_arrow.status_code == 200, from_arrow.text
    assert from_arrow.headers["content-type"] == "application/json"
    assert from_arrow.json() == from_json.json()
    # Hand-checked (tests/_books.py): w1 BTCUSDT -0.5, w2 ETHUSDT +5.
    assert _deltas(from_arrow.json()) == [
        ("w1", "binance", "BTCUSDT", -0.5),
        ("w2", "binance", "ETHUSDT", 5.0),
        (None, "binance", "BTCUSDT", -0.5),
        (None, "binance", "ETHUSDT", 5.0),
    ]


@pytest.mark.parametrize("send_arrow", [True, False], ids=["arrow-body", "json-body"])
@pytest.mark.parametrize("schema_version", [1, 2])
async def test_accept_arrow_answers_deltas_table_and_envelope(
    sqlite_dsn: str, send_arrow: bool, schema_version: int
) -> None:
    request = body(schema_version=schema_version)
    request["positions"].append(
        {
            "world_id": "w2",
            "strategy_id": "s4",
            "symbol": "SOLUSDT",
            "qty": 4.0,
            "mark": 150.0,
            "venue": None,
        }
    )
    async with running(make_settings(sqlite_dsn, compat_rebalance_v2=True)) as ws:
        expected = (await ws.client.post("/rebalancing/plan", json=request)).json()
        headers = {**(ARROW if send_arrow else {}), "accept": ARROW_STREAM_MEDIA_TYPE}
        content = arrow_body(request) if send_arrow else json.dumps(request).encode()
        answer = await ws.client.post("/rebalancing/plan", content=content, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == ARROW_STREAM_MEDIA_TYPE
    table, envelope = decode_arrow_plan(answer.content)
    assert table.column_names == ["world_id", "venue", "symbol", "delta_qty"]
    rows = [tuple(r.values()) for r in table.to_pylist()]
    assert rows == _deltas(expected)
    assert (None, None, "SOLUSDT", 2.0) in rows  # 4 x (1.5 - 1), venue null
    without_deltas = json.loads(json.dumps(expected))
    without_deltas.pop("global_deltas")
    for plan in without_deltas["per_world"].values():
        plan.pop("deltas")
    assert envelope == without_deltas
    assert envelope["schema_version"] == schema_version
    assert ("alpha_metrics" in envelope) is (schema_version == 2)


def _mutations() -> list[tuple[str, list[tuple[int, str, Any]]]]:
    return [
        ("NaN mark", [(1, "mark", math.nan)]),
        ("negative mark", [(0, "mark", -5.0)]),
        ("zero mark", [(2, "mark", 0.0)]),
        ("infinite qty", [(0, "qty", math.inf)]),
        ("NaN qty and mark", [(2, "qty", math.nan), (2, "mark", math.nan)]),
        ("null qty", [(1, "qty", None)]),
        ("null world", [(0, "world_id", None)]),
        ("empty strategy", [(1, "strategy_id", "")]),
        ("blank symbol", [(2, "symbol", "   ")]),
        ("control character id", [(0, "world_id", "w\x01")]),
        ("tab-only world", [(0, "world_id", "\t")]),
        ("blank venue", [(1, "venue", " ")]),
        ("two bad rows", [(0, "mark", -1.0), (2, "symbol", "")]),
    ]


MUTATIONS = _mutations()


@pytest.mark.parametrize(
    "top", [{}, {"total_equity": -1.0, "run_id": ""}], ids=["rows-only", "with-field-errors"]
)
@pytest.mark.parametrize(("name", "changes"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
async def test_arrow_validation_equals_json(
    sqlite_dsn: str, name: str, changes: list[tuple[int, str, Any]], top: dict[str, Any]
) -> None:
    request = body(**top)
    for index, field, value in changes:
        request["positions"][index][field] = value
    schema = pa.schema(
        [
            ("world_id", pa.string()),
            ("strategy_id", pa.string()),
            ("symbol", pa.string()),
            ("qty", pa.float64()),
            ("mark", pa.float64()),
            ("venue", pa.string()),
        ]
    )
    async with running(make_settings(sqlite_dsn)) as ws:
        from_json = await ws.client.post(
            "/rebalancing/plan",
            content=json_bytes(request),
            headers={"content-type": "application/json"},
        )
        from_arrow = await ws.client.post(
            "/rebalancing/plan", content=arrow_body(request, schema=schema), headers=ARROW
        )
    # The model's own rule decides each id (control characters: whatever PositionSlice says).
    if name != "control character id":
        assert from_json.status_code == 422, from_json.text
    assert from_arrow.status_code == from_json.status_code, from_arrow.text
    assert from_arrow.json() == from_json.json()


@pytest.mark.parametrize(
    ("drop", "retype", "loc", "kind"),
    [
        ("mark", None, ["body", "positions", "mark"], "missing"),
        ("world_id", None, ["body", "positions", "world_id"], "missing"),
        (None, ("qty", "string"), ["body", "positions", "qty"], "float_type"),
        (None, ("mark", "bool_"), ["body", "positions", "mark"], "float_type"),
        (None, ("symbol", "int64"), ["body", "positions", "symbol"], "string_type"),
    ],
)
async def test_missing_or_mistyped_column_is_422_naming_it(
    sqlite_dsn: str, drop: str | None, retype: tuple[str, str] | None, loc: list[Any], kind: str
) -> None:
    table = pa.Table.from_pylist(body()["positions"])
    if drop:
        table = table.drop_columns([drop])
    if retype:
        column, type_name = retype
        values = {"string": ["1", "2", "3"], "bool_": [True, True, True], "int64": [1, 2, 3]}[
            type_name
        ]
        table = table.set_column(
            table.column_names.index(column),
            column,
            pa.array(values, type=getattr(pa, type_name)()),
        )
    fields = {k: v for k, v in body().items() if k != "positions"}
    async with running(make_settings(sqlite_dsn)) as ws:
        answer = await ws.client.post(
            "/rebalancing/plan", content=encode_arrow_request(table, fields), headers=ARROW
        )
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert [(e["loc"], e["type"]) for e in detail] == [(loc, kind)]
    assert loc[-1] in detail[0]["msg"]


async def test_arrow_quirks_integer_columns_dictionary_ids_no_venue(sqlite_dsn: str) -> None:
    request = body()
    table = pa.table(
        {
            "world_id": pa.array(["w1", "w1", "w2"]).dictionary_encode(),
            "strategy_id": ["s1", "s2", "s3"],
            "symbol": ["BTCUSDT", "BTCUSDT", "ETHUSDT"],
            "qty": pa.array([6, 9, 10], type=pa.int32()),
            "mark": pa.array([60000, 60000, 3000], type=pa.int64()),
            "extra": [1, 2, 3],  # tolerant reader: unknown columns are ignored
        }
    )
    fields = {k: v for k, v in request.items() if k != "positions"}
    for position in request["positions"]:
        position.pop("venue")
    request["positions"][0]["qty"], request["positions"][1]["qty"] = 6, 9
    async with running(make_settings(sqlite_dsn)) as ws:
        expected = await ws.client.post("/rebalancing/plan", json=request)
        answer = await ws.client.post(
            "/rebalancing/plan", content=encode_arrow_request(table, fields), headers=ARROW
        )
    assert answer.status_code == 200, answer.text
    assert answer.json() == expected.json()
    assert answer.json()["global_deltas"][0] == {"symbol": "BTCUSDT", "delta_qty": -5.0}


async def test_not_an_arrow_stream_and_positions_in_metadata_are_422(sqlite_dsn: str) -> None:
    request = body()
    table = pa.Table.from_pylist(request["positions"])
    async with running(make_settings(sqlite_dsn)) as ws:
        garbage = await ws.client.post("/rebalancing/plan", content=b"{not arrow", headers=ARROW)
        doubled = await ws.client.post(
            "/rebalancing/plan", content=encode_arrow_request(table, request), headers=ARROW
        )
        no_fields = await ws.client.post(
            "/rebalancing/plan", content=encode_arrow_request(table, {}), headers=ARROW
        )
    assert garbage.status_code == 422
    assert garbage.json()["detail"][0]["loc"] == ["body"]
    assert doubled.status_code == 422
    assert doubled.json()["detail"][0]["loc"] == ["body", "positions"]
    assert no_fields.status_code == 422
    assert {tuple(e["loc"]) for e in no_fields.json()["detail"]} == {
        ("body", "total_equity"),
        ("body", "world_alloc_after"),
    }


async def test_unknown_content_type_is_415(sqlite_dsn: str) -> None:
    async with running(make_settings(sqlite_dsn)) as ws:
        answer = await ws.client.post(
            "/rebalancing/plan", content=json.dumps(body()), headers={"content-type": "text/csv"}
        )
        apply = await ws.client.post(
            "/rebalancing/apply",
            content=json.dumps(body()),
            headers={"content-type": "application/xml"},
        )
        problem_json = await ws.client.post(
            "/rebalancing/plan",
            content=json.dumps(body()),
            headers={"content-type": "application/merge-patch+json"},
        )
    for refused in (answer, apply):
        assert refused.status_code == 415
        detail = refused.json()["detail"]
        assert detail["code"] == "E_UNSUPPORTED_MEDIA_TYPE"
        assert ARROW_STREAM_MEDIA_TYPE in detail["supported"]
    assert problem_json.status_code == 200


async def test_without_pyarrow_arrow_is_415_naming_the_extra(
    sqlite_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unit-level: pyarrow is hidden from the import system (``sys.modules`` entry None)."""
    raw = arrow_body(body())
    monkeypatch.setitem(__import__("sys").modules, "pyarrow", None)
    async with running(make_settings(sqlite_dsn)) as ws:
        posted = await ws.client.post("/rebalancing/plan", content=raw, headers=ARROW)
        asked = await ws.client.post(
            "/rebalancing/plan", json=body(), headers={"accept": ARROW_STREAM_MEDIA_TYPE}
        )
        plain = await ws.client.post("/rebalancing/plan", json=body())
    for refused in (posted, asked):
        assert refused.status_code == 415
        assert refused.json()["detail"]["code"] == "E_UNSUPPORTED_MEDIA_TYPE"
        assert "qmtl-rebalancing[arrow]" in refused.json()["detail"]["message"]
    assert plain.status_code == 200


async def test_apply_accepts_an_arrow_body(sqlite_dsn: str) -> None:
    request = body(run_id="arrow-run-1")
    async with running(make_settings(sqlite_dsn)) as ws:
        first = await ws.client.post(
            "/rebalancing/apply", content=arrow_body(request), headers=ARROW
        )
        replay = await ws.client.post("/rebalancing/apply", json=request)
    assert first.status_code == 200, first.text
    assert replay.status_code == 200, replay.text
    # The same body sent as JSON is the same run: replayed, not a 409.
    assert replay.headers.get("idempotent-replayed") == "true"
    assert replay.json() == first.json()
    assert _deltas(first.json())[0] == ("w1", "binance", "BTCUSDT", -0.5)


async def test_caller_dictionaries_with_repeats_unused_and_null_entries(sqlite_dsn: str) -> None:
    """Arrow dictionaries need not be unique or fully used: only the rows' values count."""
    request = body()
    worlds = pa.DictionaryArray.from_arrays(
        pa.array([0, 3, 2], type=pa.int32()), pa.array(["w1", " ", "w2", "w1"])
    )
    venues = pa.DictionaryArray.from_arrays(
        pa.array([0, 0, 1], type=pa.int8()), pa.array(["binance", "binance", "cme"])
    )
    table = pa.table(
        {
            "world_id": worlds,
            "strategy_id": ["s1", "s2", "s3"],
            "symbol": ["BTCUSDT", "BTCUSDT", "ETHUSDT"],
            "qty": [0.6, 0.9, 10.0],
            "mark": [60000.0, 60000.0, 3000.0],
            "venue": venues,
        }
    )
    request["positions"][2]["venue"] = "binance"
    fields = {k: v for k, v in request.items() if k != "positions"}
    bad_row = table.set_column(
        0,
        "world_id",
        pa.DictionaryArray.from_arrays(
            pa.array([0, 1, None], type=pa.int32()), pa.array(["w1", " "])
        ),
    )
    async with running(make_settings(sqlite_dsn)) as ws:
        expected = await ws.client.post("/rebalancing/plan", json=request)
        answer = await ws.client.post(
            "/rebalancing/plan", content=encode_arrow_request(table, fields), headers=ARROW
        )
        refused = await ws.client.post(
            "/rebalancing/plan", content=encode_arrow_request(bad_row, fields), headers=ARROW
        )
    assert answer.status_code == 200, answer.text
    assert answer.json() == expected.json()  # the unused " " is no world of the plan
    assert [(e["loc"], e["type"]) for e in refused.json()["detail"]] == [
        (["body", "positions", 1, "world_id"], "value_error"),
        (["body", "positions", 2, "world_id"], "string_type"),
    ]


async def test_duplicate_columns_and_dictionary_numbers(sqlite_dsn: str) -> None:
    request = body()
    fields = {k: v for k, v in request.items() if k != "positions"}
    table = pa.Table.from_pylist(request["positions"])
    doubled = table.append_column("mark", pa.array([1.0, 2.0, 3.0]))
    coded = table.set_column(
        table.column_names.index("mark"),
        "mark",
        pa.array([60000, 60000, 3000], type=pa.int32()).dictionary_encode(),
    )
    async with running(make_settings(sqlite_dsn)) as ws:
        expected = await ws.client.post("/rebalancing/plan", json=request)
        refused = await ws.client.post(
            "/rebalancing/plan", content=encode_arrow_request(doubled, fields), headers=ARROW
        )
        decoded = await ws.client.post(
            "/rebalancing/plan", content=encode_arrow_request(coded, fields), headers=ARROW
        )
    assert refused.status_code == 422
    assert [e["loc"] for e in refused.json()["detail"]] == [["body", "positions", "mark"]]
    assert decoded.status_code == 200, decoded.text
    assert decoded.json() == expected.json()
