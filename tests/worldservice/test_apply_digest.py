"""The apply request digest (``worldservice.digests``): same meaning → same digest, any
meaningful change → another, fast reader = pydantic fallback, and runs stored with the
legacy digest (releases up to f4cf00e) still replay after the upgrade."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from qmtl.contracts import MultiWorldRebalanceRequest, sha256_hex
from qmtl.engine.book import PositionBook
from qmtl.engine.columns import ColumnRequest, decode_request
from qmtl.worldservice.config import normalize_dsn
from qmtl.worldservice.digests import (
    COLUMNAR_PREFIX,
    digest_matches,
    is_legacy_digest,
    legacy_digest,
    request_digest,
)
from qmtl.worldservice.store.database import Database
from tests.engine.test_columns_equivalence import mutated, requests

from .conftest import body, make_settings, running, table_counts


def old_request_hash(request: MultiWorldRebalanceRequest) -> str:
    """The reference: ``apply.request_hash`` as released up to f4cf00e, verbatim."""
    return sha256_hex(request.model_dump(mode="json", exclude={"run_id"}))


def _slow(raw: bytes) -> MultiWorldRebalanceRequest | None:
    try:
        return MultiWorldRebalanceRequest.model_validate_json(raw)
    except ValidationError:
        return None


def _fallback(request: MultiWorldRebalanceRequest) -> ColumnRequest:
    """What ``planning.as_columns`` makes of a body pydantic validated."""
    return ColumnRequest(request=request.model_copy(update={"positions": []}),
                         book=PositionBook.from_positions(request.positions))


def digest_of(document: dict[str, Any] | bytes) -> str:
    raw = document if isinstance(document, bytes) else json.dumps(document).encode()
    fast = decode_request(raw)
    assert fast is not None, raw
    return request_digest(fast.request, fast.book)


def _check_paths_agree(raw: bytes) -> None:
    slow = _slow(raw)
    fast = decode_request(raw)
    if slow is None:
        assert fast is None
        return
    fallback = _fallback(slow)
    digest = request_digest(fallback.request, fallback.book)
    assert len(digest) == 64 and digest.startswith(COLUMNAR_PREFIX)
    assert not is_legacy_digest(digest)
    if fast is not None:
        assert request_digest(fast.request, fast.book) == digest
    # The legacy digest rebuilt from columns is the old function's, byte for byte.
    legacy = old_request_hash(slow)
    assert is_legacy_digest(legacy)
    assert legacy_digest(fallback.request, fallback.book) == legacy
    if fast is not None:
        assert legacy_digest(fast.request, fast.book) == legacy
        assert digest_matches(legacy, digest, fast.request, fast.book)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=requests(), ensure_ascii=st.booleans())
def test_fast_reader_and_fallback_digest_alike(document: dict[str, Any],
                                               ensure_ascii: bool) -> None:
    _check_paths_agree(json.dumps(document, ensure_ascii=ensure_ascii).encode())


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=mutated())
def test_fast_reader_and_fallback_digest_alike_on_mutated_bodies(raw: bytes) -> None:
    _check_paths_agree(raw)


BASE: dict[str, Any] = body(
    positions=[
        {"world_id": "w1", "strategy_id": "s1", "symbol": "BTC", "qty": 0.5, "mark": 100.0,
         "venue": "binance"},
        {"world_id": "w1", "strategy_id": "s2", "symbol": "ETH", "qty": -2.0, "mark": 10.0},
        {"world_id": "w2", "strategy_id": "s1", "symbol": "BTC", "qty": 3.0, "mark": 100.0,
         "venue": None},
    ],
    min_trade_notional=1.0,
    rebalance_intent={"meta": {"ticket": "DESK-1"}},
    run_id="r1",
)


def _same_meaning() -> list[tuple[str, bytes]]:
    reordered = {k: BASE[k] for k in reversed(list(BASE))}
    reordered["positions"] = [{k: p[k] for k in reversed(list(p))} for p in BASE["positions"]]
    integers = copy.deepcopy(BASE)
    integers["positions"][1]["qty"] = -2
    integers["positions"][0]["mark"] = 100
    integers["total_equity"] = 1_000_000
    nulls = copy.deepcopy(BASE)
    nulls["positions"][1]["venue"] = None
    del nulls["positions"][2]["venue"]
    nulls.update(lot_size_by_symbol=None, overlay=None, strategy_alloc_before_total=None,
                 alpha_series=None)
    unknown = copy.deepcopy(BASE)
    unknown["unknown_top"] = {"anything": [1, 2]}
    unknown["positions"][0]["note"] = "ignored"
    other_run = dict(BASE, run_id="r2")
    zero = copy.deepcopy(BASE)
    zero["positions"][1]["qty"] = 0.0
    negative_zero = copy.deepcopy(zero)
    negative_zero["positions"][1]["qty"] = -0.0
    return [
        ("key order", json.dumps(reordered).encode()),
        ("spacing", json.dumps(BASE, indent=4).encode()),
        ("escapes", json.dumps(BASE, ensure_ascii=True).encode()),
        ("1 vs 1.0", json.dumps(integers).encode()),
        ("mode case", json.dumps(dict(BASE, mode="SCALING")).encode()),
        ("explicit default mode", json.dumps(dict(BASE, mode="scaling")).encode()),
        ("null optionals", json.dumps(nulls).encode()),
        ("unknown fields", json.dumps(unknown).encode()),
        ("run_id", json.dumps(other_run).encode()),
        ("schema_version null", json.dumps(dict(BASE, schema_version=None)).encode()),
        ("-0.0", json.dumps(negative_zero).encode()),
    ]


@pytest.mark.parametrize(("name", "raw"), _same_meaning(), ids=[n for n, _ in _same_meaning()])
def test_same_meaning_same_digest(name: str, raw: bytes) -> None:
    zero = copy.deepcopy(BASE)
    zero["positions"][1]["qty"] = 0.0
    reference = zero if name == "-0.0" else BASE
    assert digest_of(raw) == digest_of(reference)


def _position(index: int, field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        document["positions"][index][field] = value
    return change


def _top(field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        document[field] = value
    return change


def _swap_rows(document: dict[str, Any]) -> None:
    rows = document["positions"]
    rows[0], rows[2] = rows[2], rows[0]


def _drop_row(document: dict[str, Any]) -> None:
    document["positions"].pop()


def _swap_worlds(document: dict[str, Any]) -> None:
    rows = document["positions"]
    rows[1]["world_id"], rows[2]["world_id"] = rows[2]["world_id"], rows[1]["world_id"]


CHANGES: dict[str, Callable[[dict[str, Any]], None]] = {
    "qty by one ulp": _position(0, "qty", 0.5000000000000001),
    "qty sign": _position(1, "qty", 2.0),
    "mark": _position(2, "mark", 100.5),
    "world": _position(0, "world_id", "w2"),
    "strategy": _position(0, "strategy_id", "s2"),
    "symbol": _position(1, "symbol", "BTC"),
    "venue set": _position(1, "venue", "binance"),
    "venue cleared": _position(0, "venue", None),
    "venue renamed": _position(0, "venue", "cme"),
    "new world name": _position(0, "world_id", "w3"),
    "row order": _swap_rows,
    "row dropped": _drop_row,
    "worlds swapped between rows": _swap_worlds,
    "total_equity": _top("total_equity", 1_000_001.0),
    "world_alloc_after": _top("world_alloc_after", {"w1": 0.2, "w2": 0.31}),
    "world_alloc_before null": _top("world_alloc_before", None),
    "min_trade_notional": _top("min_trade_notional", 2.0),
    "lot sizes": _top("lot_size_by_symbol", {"BTC": 0.001}),
    "mode": _top("mode", "overlay"),
    "overlay": _top("overlay", {"instrument_by_world": {"w1": "ES"},
                                "price_by_symbol": {"ES": 5000.0}}),
    "schema_version": _top("schema_version", 2),
    "intent": _top("rebalance_intent", {"meta": {"ticket": "DESK-2"}}),
    "strategy after": _top("strategy_alloc_after_total", {"w1": {"s1": 0.1}}),
    "alpha series": _top("alpha_series", {"per_world": {"w1": {"returns": [0.01, -0.02]}}}),
}


@pytest.mark.parametrize("name", list(CHANGES))
def test_a_meaningful_change_changes_the_digest(name: str) -> None:
    changed = copy.deepcopy(BASE)
    CHANGES[name](changed)
    assert digest_of(changed) != digest_of(BASE)


def test_unused_categories_do_not_count() -> None:
    """A book may carry categories no position uses; the digest depends on values only."""
    fast = decode_request(json.dumps(BASE).encode())
    assert fast is not None
    book = fast.book
    padded = PositionBook.from_codes(
        worlds=[*book.worlds, "zz"], strategies=["a0", *book.strategies],
        keys=[*book.keys, ("zz", "ZZ")], world=book.world, strategy=book.strategy + 1,
        key=book.key, qty=book.qty, mark=book.mark)
    assert request_digest(fast.request, padded) == request_digest(fast.request, book)


def test_both_formats_fit_the_column_and_are_told_apart() -> None:
    fast = decode_request(json.dumps(BASE).encode())
    assert fast is not None
    new = request_digest(fast.request, fast.book)
    old = legacy_digest(fast.request, fast.book)
    assert len(new) == len(old) == 64
    assert (is_legacy_digest(new), is_legacy_digest(old)) == (False, True)
    assert digest_matches(new, new, fast.request, fast.book)
    assert digest_matches(old, new, fast.request, fast.book)
    other = decode_request(json.dumps(dict(BASE, total_equity=5.0)).encode())
    assert other is not None
    assert not digest_matches(old, request_digest(other.request, other.book),
                              other.request, other.book)
    assert not digest_matches(old.upper(), new, fast.request, fast.book)


async def _store_legacy_digest(dsn: str, run_id: str, document: dict[str, Any]) -> None:
    """Make the stored run look as the previous release wrote it."""
    legacy = old_request_hash(MultiWorldRebalanceRequest.model_validate(document))
    db = Database.create(normalize_dsn(dsn))
    try:
        async with db.write("test.legacy") as conn:
            await conn.execute(sa.text("UPDATE runs SET request_hash = :h WHERE run_id = :r"),
                               {"h": legacy, "r": run_id})
    finally:
        await db.dispose()


def _large(run_id: str) -> dict[str, Any]:
    """Over ``OFFLOAD_POSITIONS``: the replay is looked up before planning, off the loop."""
    rows = [{"world_id": f"w{1 + i % 2}", "strategy_id": f"s{i % 7}", "symbol": f"S{i % 97}",
             "qty": (i % 11) - 5 + 0.25, "mark": 10.0 + i % 13} for i in range(1_500)]
    return body(positions=rows, run_id=run_id)


@pytest.mark.parametrize("make", [lambda r: body(run_id=r), _large], ids=["small", "large"])
async def test_a_run_stored_with_the_legacy_digest_still_replays(
        sqlite_dsn: str, make: Callable[[str], dict[str, Any]]) -> None:
    document = make("legacy-run")
    async with running(make_settings(sqlite_dsn)) as ws:
        first = await ws.client.post("/rebalancing/apply", json=document)
        assert first.status_code == 200, first.text
        await _store_legacy_digest(sqlite_dsn, "legacy-run", document)
        reordered = {k: document[k] for k in reversed(list(document))}
        replay = await ws.client.post("/rebalancing/apply", json=reordered)
        other = await ws.client.post("/rebalancing/apply",
                                     json=dict(document, total_equity=5.0))
    assert replay.status_code == 200, replay.text
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == first.content
    assert other.status_code == 409
    assert other.json()["detail"]["code"] == "E_RUN_ID_CONFLICT"
    assert (await table_counts(sqlite_dsn))["runs"] == 1


async def stored_digest(dsn: str, run_id: str) -> str:
    db = Database.create(normalize_dsn(dsn))
    try:
        async with db.read("test.digest") as conn:
            return str((await conn.execute(sa.text(
                "SELECT request_hash FROM runs WHERE run_id = :run_id"),
                {"run_id": run_id})).scalar_one())
    finally:
        await db.dispose()


async def test_new_runs_store_the_columnar_digest(sqlite_dsn: str) -> None:
    document = body(run_id="new-run")
    async with running(make_settings(sqlite_dsn)) as ws:
        response = await ws.client.post("/rebalancing/apply", json=document)
    assert response.status_code == 200
    assert await stored_digest(sqlite_dsn, "new-run") == digest_of(document)


async def test_during_a_rolling_upgrade_the_legacy_digest_is_stored(sqlite_dsn: str) -> None:
    # worldservice.server.legacy_request_digest: a replica of the previous release, sharing
    # the store, compares its own old request_hash with what is stored, so a replay that
    # lands on it must find the old digest (else it would answer 409 to the same body).
    document = body(run_id="upgrade-run")
    settings = make_settings(sqlite_dsn, legacy_request_digest=True)
    async with running(settings) as ws:
        first = await ws.client.post("/rebalancing/apply", json=document)
        replay = await ws.client.post("/rebalancing/apply", json=document)
    assert first.status_code == 200 and replay.headers["idempotent-replayed"] == "true"
    assert await stored_digest(sqlite_dsn, "upgrade-run") == old_request_hash(
        MultiWorldRebalanceRequest.model_validate(document))
    # After the upgrade (flag off) the run still replays, and a changed body is a conflict.
    async with running(make_settings(sqlite_dsn)) as ws:
        again = await ws.client.post("/rebalancing/apply", json=document)
        other = await ws.client.post("/rebalancing/apply",
                                     json=dict(document, total_equity=5.0))
    assert again.headers["idempotent-replayed"] == "true" and again.content == first.content
    assert other.status_code == 409
