"""Bad input is a 422 naming the field (list form), never a 500 or NaN; then the coded
checks in SPEC order: 501 hybrid first, 400 version, 422 overlay configuration; 413 limits."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .conftest import body, make_settings, running


def _with(path: list[Any], value: Any) -> dict[str, Any]:
    result = body()
    node: Any = result
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return result


def _raw(text_body: dict[str, Any], replacements: dict[str, str]) -> bytes:
    text = json.dumps(text_body)
    for old, new in replacements.items():
        text = text.replace(old, new)
    return text.encode()


CASES: list[tuple[str, bytes, list[Any]]] = [
    ("NaN total_equity", _raw(body(total_equity=123.25), {"123.25": "NaN"}), ["total_equity"]),
    ("Infinity ratio", _raw(_with(["world_alloc_after", "w1"], 0.125), {"0.125": "Infinity"}),
     ["world_alloc_after", "w1"]),
    ("-Infinity qty", _raw(_with(["positions", 0, "qty"], 0.125), {"0.125": "-Infinity"}),
     ["positions", 0, "qty"]),
    ("mark zero", json.dumps(_with(["positions", 1, "mark"], 0)).encode(),
     ["positions", 1, "mark"]),
    ("mark negative", json.dumps(_with(["positions", 1, "mark"], -5.0)).encode(),
     ["positions", 1, "mark"]),
    ("ratio above one", json.dumps(_with(["world_alloc_after", "w2"], 1.5)).encode(),
     ["world_alloc_after", "w2"]),
    ("negative ratio", json.dumps(_with(["world_alloc_before", "w2"], -0.1)).encode(),
     ["world_alloc_before", "w2"]),
    ("after sums above one",
     json.dumps(body(world_alloc_after={"w1": 0.6, "w2": 0.5})).encode(), ["world_alloc_after"]),
    ("before sums above one",
     json.dumps(body(world_alloc_before={"w1": 0.7, "w2": 0.4})).encode(),
     ["world_alloc_before"]),
    ("empty world id", json.dumps(_with(["positions", 0, "world_id"], "")).encode(),
     ["positions", 0, "world_id"]),
    ("blank symbol", json.dumps(_with(["positions", 2, "symbol"], "   ")).encode(),
     ["positions", 2, "symbol"]),
    ("empty strategy id", json.dumps(_with(["positions", 0, "strategy_id"], "")).encode(),
     ["positions", 0, "strategy_id"]),
    ("unknown mode", json.dumps(body(mode="turbo")).encode(), ["mode"]),
    ("schema_version 0", json.dumps(body(schema_version=0)).encode(), ["schema_version"]),
    ("schema_version string", json.dumps(body(schema_version="2")).encode(), ["schema_version"]),
    ("schema_version true", json.dumps(body(schema_version=True)).encode(), ["schema_version"]),
    ("schema_version 2.5", json.dumps(body(schema_version=2.5)).encode(), ["schema_version"]),
    ("negative equity", json.dumps(body(total_equity=-1)).encode(), ["total_equity"]),
    ("equity as string", json.dumps(body(total_equity="1000")).encode(), ["total_equity"]),
    ("missing after", json.dumps(body(world_alloc_after=None)).encode(), ["world_alloc_after"]),
    ("lot size zero", json.dumps(body(lot_size_by_symbol={"BTCUSDT": 0})).encode(),
     ["lot_size_by_symbol", "BTCUSDT"]),
    ("negative min notional", json.dumps(body(min_trade_notional=-1)).encode(),
     ["min_trade_notional"]),
    ("overlay price zero",
     json.dumps(body(mode="overlay", overlay={"instrument_by_world": {"w1": "ES"},
                                              "price_by_symbol": {"ES": 0}})).encode(),
     ["overlay", "price_by_symbol", "ES"]),
    ("positions not a list", json.dumps(body(positions={"a": 1})).encode(), ["positions"]),
    ("NaN in an unknown field", _raw(body(brand_new={"x": [0.125]}), {"0.125": "NaN"}),
     ["brand_new", "x", 0]),
    ("-Infinity in an unknown field", _raw(body(zz=0.125), {"0.125": "-Infinity"}), ["zz"]),
    ("alpha series inf",
     _raw(body(schema_version=2, alpha_series={"per_world": {"w1": {"returns": [0.125]}}}),
          {"0.125": "Infinity"}), ["alpha_series", "per_world", "w1", "returns", 0]),
]


@pytest.mark.parametrize("endpoint", ["/rebalancing/plan", "/rebalancing/apply"])
@pytest.mark.parametrize(("name", "raw", "loc"), CASES, ids=[c[0] for c in CASES])
async def test_bad_input_is_422_naming_the_field(sqlite_dsn: str, endpoint: str, name: str,
                                                 raw: bytes, loc: list[Any]) -> None:
    async with running(make_settings(sqlite_dsn, compat_rebalance_v2=True)) as ws:
        response = await ws.client.post(endpoint, content=raw,
                                        headers={"content-type": "application/json"})
        counts = (await ws.client.get("/health")).json()["outbox"]
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list)
    assert ["body", *loc] in [err["loc"] for err in detail], detail
    assert all({"loc", "msg", "type"} <= set(err) for err in detail)
    assert counts["pending"] == 0


async def test_invalid_json_is_422(sqlite_dsn: str) -> None:
    async with running(make_settings(sqlite_dsn)) as ws:
        response = await ws.client.post("/rebalancing/plan", content=b"{not json",
                                        headers={"content-type": "application/json"})
        empty = await ws.client.post("/rebalancing/plan", content=b"")
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"
    assert empty.status_code == 422


async def test_unknown_fields_are_ignored_and_mode_is_case_insensitive(sqlite_dsn: str) -> None:
    request = body(mode="SCALING", brand_new_field={"x": 1})
    request["positions"][0]["future_field"] = True
    async with running(make_settings(sqlite_dsn)) as ws:
        response = await ws.client.post("/rebalancing/plan", json=request)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("endpoint", ["/rebalancing/plan", "/rebalancing/apply"])
async def test_hybrid_is_501_before_any_other_check(sqlite_dsn: str, endpoint: str) -> None:
    # v2 is required and not requested (would be 400) and there is no overlay config:
    # hybrid still answers 501 first.
    settings = make_settings(sqlite_dsn, compat_rebalance_v2=True, alpha_metrics_required=True)
    async with running(settings) as ws:
        response = await ws.client.post(endpoint, json=body(mode="Hybrid"))
    assert response.status_code == 501
    assert response.json()["detail"]["code"] == "E_REBALANCE_MODE_UNSUPPORTED"


@pytest.mark.parametrize("endpoint", ["/rebalancing/plan", "/rebalancing/apply"])
async def test_version_check_precedes_overlay_check(sqlite_dsn: str, endpoint: str) -> None:
    settings = make_settings(sqlite_dsn, compat_rebalance_v2=True, alpha_metrics_required=True)
    async with running(settings) as ws:
        response = await ws.client.post(endpoint, json=body(mode="overlay", schema_version=1))
    assert response.status_code == 400
    assert response.json()["detail"]["code"] == "E_SCHEMA_VERSION_REQUIRED"


@pytest.mark.parametrize("endpoint", ["/rebalancing/plan", "/rebalancing/apply"])
async def test_overlay_without_config_is_422_coded(sqlite_dsn: str, endpoint: str) -> None:
    async with running(make_settings(sqlite_dsn)) as ws:
        response = await ws.client.post(endpoint, json=body(mode="overlay"))
    assert response.status_code == 422
    assert response.json()["detail"]["code"] == "E_OVERLAY_CONFIG_REQUIRED"


async def test_overlay_missing_instrument_is_422_coded(sqlite_dsn: str) -> None:
    overlay = {"instrument_by_world": {"w1": "ES"}, "price_by_symbol": {"ES": 5000.0}}
    async with running(make_settings(sqlite_dsn)) as ws:
        response = await ws.client.post("/rebalancing/plan",
                                        json=body(mode="overlay", overlay=overlay))
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail["code"] == "E_OVERLAY_CONFIG_INVALID"
    assert "w2" in detail["message"]


async def test_body_over_the_byte_limit_is_413(sqlite_dsn: str) -> None:
    async with running(make_settings(sqlite_dsn, max_body_bytes=2_000)) as ws:
        request = body(positions=BIG_POSITIONS)
        response = await ws.client.post("/rebalancing/plan", json=request)
    assert response.status_code == 413
    assert response.json()["detail"]["code"] == "E_PAYLOAD_TOO_LARGE"


async def test_too_many_positions_is_413(sqlite_dsn: str) -> None:
    async with running(make_settings(sqlite_dsn, max_positions=3)) as ws:
        ok = await ws.client.post("/rebalancing/plan", json=body())
        too_many = await ws.client.post("/rebalancing/apply", json=body(positions=BIG_POSITIONS))
        nothing = (await ws.client.get("/health")).json()["outbox"]
    assert ok.status_code == 200
    assert too_many.status_code == 413
    detail = too_many.json()["detail"]
    assert detail["code"] == "E_PAYLOAD_TOO_LARGE"
    assert detail["limit_positions"] == 3
    assert detail["positions"] == len(BIG_POSITIONS)
    assert nothing["pending"] == 0


BIG_POSITIONS = [
    {"world_id": "w1", "strategy_id": "s1", "symbol": f"SYM{i}", "qty": 1.0, "mark": 10.0}
    for i in range(40)
]


async def test_null_optional_fields_mean_absent(sqlite_dsn: str) -> None:
    # SPEC 2: older clients serialise unset fields as null; each is planned as if absent.
    overlay = {"instrument_by_world": {"w1": "ES", "w2": "ES"}, "price_by_symbol": {"ES": 5000.0}}
    nulls = {"positions": None, "strategy_alloc_before_total": None,
             "strategy_alloc_after_total": None, "min_trade_notional": None,
             "lot_size_by_symbol": None, "mode": None, "overlay": None, "run_id": None,
             "schema_version": None, "rebalance_intent": None, "alpha_series": None}
    scaling = body()
    with_nulls = {**scaling, **nulls, "positions": scaling["positions"]}
    overlay_absent = body(mode="overlay", overlay=overlay)
    overlay_null = body(mode="overlay", overlay={**overlay, "min_order_notional": None})
    v2_nulls = body(schema_version=2, rebalance_intent={"meta": None},
                    alpha_series={"per_world": None, "per_strategy": None})
    async with running(make_settings(sqlite_dsn, compat_rebalance_v2=True)) as ws:
        post = ws.client.post
        pairs = [
            (await post("/rebalancing/plan", json=scaling),
             await post("/rebalancing/plan", json=with_nulls)),
            (await post("/rebalancing/plan", json=overlay_absent),
             await post("/rebalancing/plan", json=overlay_null)),
            (await post("/rebalancing/plan", json=body(schema_version=2)),
             await post("/rebalancing/plan", json=v2_nulls)),
            (await post("/rebalancing/plan", json=body(positions=[])),
             await post("/rebalancing/plan", json=body(positions=[]) | {"positions": None})),
        ]
    for absent, null in pairs:
        assert absent.status_code == null.status_code == 200, (absent.text, null.text)
        assert absent.json() == null.json()


@pytest.mark.parametrize(("literal", "shown"), [("NaN", "nan"), ("Infinity", "inf"),
                                                ("-Infinity", "-inf"), ("1e999", "inf")])
@pytest.mark.parametrize("endpoint", ["/rebalancing/plan", "/rebalancing/apply"])
async def test_non_finite_numbers_in_intent_meta_are_422_naming_the_path(
        sqlite_dsn: str, endpoint: str, literal: str, shown: str) -> None:
    # Before: accepted and stored as null. Any depth counts.
    meta = {"ticket": "T-1", "deep": [{"a": {"b": [1, 0.125]}}]}
    raw = _raw(body(schema_version=2, rebalance_intent={"meta": meta}), {"0.125": literal})
    async with running(make_settings(sqlite_dsn, compat_rebalance_v2=True)) as ws:
        response = await ws.client.post(endpoint, content=raw,
                                        headers={"content-type": "application/json"})
        pending = (await ws.client.get("/health")).json()["outbox"]["pending"]
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "rebalance_intent", "meta"]
    assert f"meta.deep[0].a.b[1] is {shown}" in error["msg"]
    assert pending == 0


async def test_the_words_nan_and_infinity_in_strings_are_fine(sqlite_dsn: str) -> None:
    request = body(schema_version=2, rebalance_intent={"meta": {"NaN": "Infinity"}},
                   label="NaN")
    async with running(make_settings(sqlite_dsn, compat_rebalance_v2=True)) as ws:
        response = await ws.client.post("/rebalancing/apply", json=request)
    assert response.status_code == 200, response.text
    assert response.json()["rebalance_intent"] == {"meta": {"NaN": "Infinity"}}
