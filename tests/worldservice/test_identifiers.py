"""Identifiers are non-blank printable text without control characters (SPEC 2): every id
field and every id-keyed map key, in bodies, paths and queries, is a 422 naming the field —
before anything reaches the store (a NUL gave 503 ``E_STORE_UNAVAILABLE`` on PostgreSQL)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from .conftest import body, make_settings, running

BAD_IDS = {
    "NUL": "w\x00x",
    "newline": "w\n",
    "tab": "\tw",
    "DEL": "w\x7f",
    "C1 NEL": "w\x85",
    "line separator": "w\u2028",
    "blank": " \u00a0 ",
}

_OVERLAY = {"instrument_by_world": {"w1": "ES", "w2": "ES"}, "price_by_symbol": {"ES": 5000.0}}
_ALPHA = {"per_world": {"w1": {"returns": [0.01, -0.02]}},
          "per_strategy": {"s1": {"w1": {"returns": [0.01, -0.02]}}}}
_STRATEGY = {"w1": {"s1": 0.1, "s2": 0.1}}


def _base() -> dict[str, Any]:
    return body(schema_version=2, overlay=copy.deepcopy(_OVERLAY),
                alpha_series=copy.deepcopy(_ALPHA),
                strategy_alloc_before_total=copy.deepcopy(_STRATEGY),
                strategy_alloc_after_total=copy.deepcopy(_STRATEGY),
                lot_size_by_symbol={"BTCUSDT": 0.001})


def _set_value(path: list[Any]) -> Any:
    def change(request: dict[str, Any], bad: str) -> list[Any]:
        node: Any = request
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = bad
        return path
    return change


def _rename_key(path: list[Any], key: str) -> Any:
    def change(request: dict[str, Any], bad: str) -> list[Any]:
        node: Any = request
        for part in path:
            node = node[part]
        node[bad] = node.pop(key)
        return [*path, bad, "[key]"]
    return change


# Where an id lives: a field value, or a key of an id-keyed map.
PLACES = {
    "positions.world_id": _set_value(["positions", 0, "world_id"]),
    "positions.strategy_id": _set_value(["positions", 0, "strategy_id"]),
    "positions.symbol": _set_value(["positions", 1, "symbol"]),
    "positions.venue": _set_value(["positions", 2, "venue"]),
    "run_id": _set_value(["run_id"]),
    "world_alloc_before key": _rename_key(["world_alloc_before"], "w1"),
    "world_alloc_after key": _rename_key(["world_alloc_after"], "w2"),
    "strategy_alloc_before_total world key": _rename_key(["strategy_alloc_before_total"], "w1"),
    "strategy_alloc_after_total strategy key": _rename_key(["strategy_alloc_after_total", "w1"],
                                                           "s1"),
    "lot_size_by_symbol key": _rename_key(["lot_size_by_symbol"], "BTCUSDT"),
    "overlay.instrument_by_world key": _rename_key(["overlay", "instrument_by_world"], "w1"),
    "overlay.instrument_by_world value": _set_value(["overlay", "instrument_by_world", "w2"]),
    "overlay.price_by_symbol key": _rename_key(["overlay", "price_by_symbol"], "ES"),
    "alpha_series.per_world key": _rename_key(["alpha_series", "per_world"], "w1"),
    "alpha_series.per_strategy strategy key": _rename_key(["alpha_series", "per_strategy"], "s1"),
    "alpha_series.per_strategy world key": _rename_key(["alpha_series", "per_strategy", "s1"],
                                                       "w1"),
}


async def test_the_base_request_with_every_id_place_filled_is_planned(sqlite_dsn: str) -> None:
    settings = make_settings(sqlite_dsn, compat_rebalance_v2=True)
    async with running(settings) as ws:
        response = await ws.client.post("/rebalancing/plan", json=_base())
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("place", list(PLACES))
async def test_a_control_character_in_any_id_is_422_naming_it(sqlite_dsn: str,
                                                              place: str) -> None:
    settings = make_settings(sqlite_dsn, compat_rebalance_v2=True)
    async with running(settings) as ws:
        for endpoint in ("/rebalancing/plan", "/rebalancing/apply"):
            for name, bad in BAD_IDS.items():
                request = _base()
                loc = PLACES[place](request, bad)
                response = await ws.client.post(endpoint, json=request)
                assert response.status_code == 422, (endpoint, name, response.text)
                locs = [err["loc"] for err in response.json()["detail"]]
                assert ["body", *loc] in locs, (endpoint, name, locs)
        pending = (await ws.client.get("/health")).json()["outbox"]["pending"]
    assert pending == 0


async def test_printable_unicode_ids_are_accepted(sqlite_dsn: str) -> None:
    request = body()
    request["positions"][0]["strategy_id"] = "전략 α/1"  # spaces and non-ASCII are fine
    request["world_alloc_after"]["w\u00a03"] = 0.1
    async with running(make_settings(sqlite_dsn)) as ws:
        response = await ws.client.post("/rebalancing/apply", json=request)
    assert response.status_code == 200, response.text
    assert "w\u00a03" in response.json()["per_world"]


@pytest.mark.parametrize(("url", "loc"), [
    ("/allocations?world_id=w%00", ["query", "world_id"]),
    ("/rebalancing/runs/r%00x", ["path", "run_id"]),
    ("/worlds/w%0A/audit", ["path", "world_id"]),
])
async def test_control_characters_in_paths_and_queries_are_422(sqlite_dsn: str, url: str,
                                                               loc: list[str]) -> None:
    async with running(make_settings(sqlite_dsn)) as ws:
        response = await ws.client.get(url)
    assert response.status_code == 422, response.text
    assert loc in [err["loc"] for err in response.json()["detail"]]


async def test_allocation_upsert_refuses_a_control_character_in_a_world_key(
        sqlite_dsn: str) -> None:
    async with running(make_settings(sqlite_dsn)) as ws:
        world = await ws.client.post("/allocations", json={"world_alloc": {"w\x00": 0.1}})
        strategy = await ws.client.post("/allocations", json={
            "world_alloc": {"w1": 0.1}, "strategy_alloc_total": {"w1": {"s\x1b": 0.1}}})
        run = await ws.client.post("/allocations", json={"world_alloc": {"w1": 0.1},
                                                         "run_id": "r\x00"})
    assert world.status_code == strategy.status_code == run.status_code == 422
    assert ["body", "world_alloc", "w\x00", "[key]"] in [e["loc"] for e in world.json()["detail"]]
    assert ["body", "strategy_alloc_total", "w1", "s\x1b", "[key]"] in [
        e["loc"] for e in strategy.json()["detail"]]
    assert ["body", "run_id"] in [e["loc"] for e in run.json()["detail"]]


@pytest.mark.postgres
async def test_a_nul_in_a_world_id_is_422_on_postgresql(postgres_dsn: str) -> None:
    # Before: the id reached asyncpg, which refused the NUL: 503 E_STORE_UNAVAILABLE.
    request = body()
    request["positions"][0]["world_id"] = "w\x00"
    async with running(make_settings(postgres_dsn)) as ws:
        refused = await ws.client.post("/rebalancing/apply", json=request)
        audit = await ws.client.get("/worlds/w%00/audit")
        good = await ws.client.post("/rebalancing/apply", json=body())
    assert refused.status_code == 422, refused.text
    assert audit.status_code == 422, audit.text
    assert good.status_code == 200, good.text
