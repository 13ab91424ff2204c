"""Invariants of the planner, checked on generated requests (hypothesis).

Expected values are recomputed here with plain Python (``math.fsum`` over the positions),
never by calling the engine's own helpers.
"""

from __future__ import annotations

import math
from collections import defaultdict
from decimal import Decimal
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qmtl.contracts import MultiWorldRebalanceRequest, MultiWorldRebalanceResponse
from qmtl.engine import PositionBook, plan_book, plan_rebalance
from qmtl.engine.book import key_order
from qmtl.engine.planning import allocation_inputs, to_response

from ._build import STRATEGIES, SYMBOLS, WORLDS, allocations, positions, ratios, request

SETTINGS = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
LOTS = {"AAA": 0.01, "BBB": 0.5}  # CCC has no lot


@st.composite
def strategy_maps(draw: st.DrawFn) -> dict[str, dict[str, float]] | None:
    if not draw(st.booleans()):
        return None
    worlds = draw(st.lists(st.sampled_from(WORLDS), unique=True, max_size=2))
    return {
        w: draw(st.dictionaries(st.sampled_from(STRATEGIES), ratios, max_size=3)) for w in worlds
    }


@st.composite
def requests(
    draw: st.DrawFn, *, lots: bool = True, dust: bool = False
) -> MultiWorldRebalanceRequest:
    fields: dict[str, Any] = {
        "total_equity": draw(st.sampled_from([0.0, 1_000.0, 1_000_000.0])),
        "world_alloc_before": draw(allocations()),
        "world_alloc_after": draw(allocations()),
        "positions": draw(positions()),
        "strategy_alloc_before_total": draw(strategy_maps()),
        "strategy_alloc_after_total": draw(strategy_maps()),
    }
    if lots:
        fields["lot_size_by_symbol"] = LOTS
    if dust:
        fields["min_trade_notional"] = draw(st.sampled_from([0.0, 1.0, 50.0]))
    return request(**fields)


Row = tuple[str | None, str, float]


def rows(deltas: Any) -> list[Row]:
    return [(d.venue, d.symbol, d.delta_qty) for d in deltas]


def gross_by_key(req: MultiWorldRebalanceRequest, world: str | None = None) -> dict[Any, float]:
    gross: dict[Any, float] = defaultdict(float)
    for p in req.positions:
        if world is None or p.world_id == world:
            gross[(p.venue, p.symbol)] += abs(p.qty)
    return gross


@SETTINGS
@given(data=st.data())
def test_unchanged_allocations_give_no_deltas(data: st.DataObject) -> None:
    held = data.draw(positions())
    maps = data.draw(strategy_maps())
    worlds = sorted({p["world_id"] for p in held} | set(data.draw(allocations())) | set(maps or {}))
    # Every planned world keeps the same non-zero allocation (A = B = 0 would liquidate).
    alloc = {w: data.draw(st.integers(1, 300)) / 1000 for w in worlds}
    response = plan_rebalance(
        request(
            world_alloc_before=alloc,
            world_alloc_after=dict(alloc),
            strategy_alloc_before_total=maps,
            strategy_alloc_after_total=maps,
            positions=held,
            lot_size_by_symbol=LOTS,
        )
    )
    assert all(plan.deltas == [] for plan in response.per_world.values())
    assert response.global_deltas == []
    assert all(plan.scale_world == 1.0 for plan in response.per_world.values())


@SETTINGS
@given(held=positions(min_size=1), before=allocations())
def test_after_zero_flattens_every_world(
    held: list[dict[str, Any]], before: dict[str, float]
) -> None:
    req = request(world_alloc_before=before, world_alloc_after={}, positions=held)
    response = plan_rebalance(req)
    for world, plan in response.per_world.items():
        net: dict[Any, list[float]] = defaultdict(list)
        for p in req.positions:
            if p.world_id == world:
                net[(p.venue, p.symbol)].append(p.qty)
        gross = gross_by_key(req, world)
        expected = {
            key: -math.fsum(q) for key, q in net.items() if abs(math.fsum(q)) > 1e-9 * gross[key]
        }
        got = {(v, s): q for v, s, q in rows(plan.deltas)}
        assert set(got) == set(expected)
        for key, qty in got.items():
            assert math.isclose(qty, expected[key], rel_tol=1e-11), (key, qty, expected[key])


def unrounded_world_deltas(
    req: MultiWorldRebalanceRequest, response: MultiWorldRebalanceResponse
) -> dict[tuple[str, Any], float]:
    moves: dict[tuple[str, Any], list[float]] = defaultdict(list)
    for p in req.positions:
        gs = response.per_world[p.world_id].scale_by_strategy[p.strategy_id]
        moves[(p.world_id, (p.venue, p.symbol))].append(p.qty * (gs - 1))
    return {key: math.fsum(values) for key, values in moves.items()}


@SETTINGS
@given(req=requests())
def test_lot_rounding_never_grows_a_delta(req: MultiWorldRebalanceRequest) -> None:
    response = plan_rebalance(req)
    unrounded = unrounded_world_deltas(req, response)
    for world, plan in response.per_world.items():
        for venue, symbol, qty in rows(plan.deltas):
            raw = unrounded[(world, (venue, symbol))]
            lot = LOTS.get(symbol)
            if lot is None:
                assert math.isclose(qty, raw, rel_tol=1e-9, abs_tol=1e-9)
                continue
            assert abs(qty) <= abs(raw) + 1e-9 * lot + 1e-12 * abs(raw)
            assert abs(raw) - abs(qty) < lot + 1e-9 * abs(raw)
            quotient = Decimal(repr(qty)) / Decimal(repr(lot))
            assert quotient == quotient.to_integral_value()


@SETTINGS
@given(req=requests())
def test_global_deltas_are_the_sum_of_world_deltas(req: MultiWorldRebalanceRequest) -> None:
    response = plan_rebalance(req)
    summed: dict[Any, list[float]] = defaultdict(list)
    for plan in response.per_world.values():
        for venue, symbol, qty in rows(plan.deltas):
            summed[(venue, symbol)].append(qty)
    gross = gross_by_key(req)
    got = {(v, s): q for v, s, q in rows(response.global_deltas)}
    for key, parts in summed.items():
        total = math.fsum(parts)
        if key in got:
            assert math.isclose(got[key], total, rel_tol=1e-9, abs_tol=1e-12)
        else:
            assert abs(total) <= 1e-9 * gross[key] + 1e-12, (key, total)
    assert set(got) <= set(summed)


def sorted_by_key(deltas: list[Row]) -> bool:
    order = [key_order((v, s)) for v, s, _ in deltas]
    return order == sorted(order) and len(set(order)) == len(order)


@SETTINGS
@given(req=requests(dust=True))
def test_deltas_are_sorted_finite_and_non_zero(req: MultiWorldRebalanceRequest) -> None:
    response = plan_rebalance(req)
    assert list(response.per_world) == sorted(response.per_world)
    all_rows = rows(response.global_deltas)
    assert sorted_by_key(all_rows)
    for plan in response.per_world.values():
        assert sorted_by_key(rows(plan.deltas))
        assert list(plan.scale_by_strategy) == sorted(plan.scale_by_strategy)
        all_rows += rows(plan.deltas)
    assert all(math.isfinite(q) and q != 0 for _, _, q in all_rows)
    expected_worlds = (
        set(req.world_alloc_after)
        | set(req.world_alloc_before or {})
        | {p.world_id for p in req.positions}
        | set(req.strategy_alloc_before_total or {})
        | set(req.strategy_alloc_after_total or {})
    )
    assert set(response.per_world) == expected_worlds


@SETTINGS
@given(req=requests(dust=True), data=st.data())
def test_results_do_not_depend_on_position_order(
    req: MultiWorldRebalanceRequest, data: st.DataObject
) -> None:
    shuffled = req.model_copy(update={"positions": data.draw(st.permutations(req.positions))})
    first, second = plan_rebalance(req), plan_rebalance(shuffled)
    assert list(first.per_world) == list(second.per_world)

    def same(a: list[Row], b: list[Row]) -> None:
        assert [(v, s) for v, s, _ in a] == [(v, s) for v, s, _ in b]
        for (_, _, x), (_, _, y) in zip(a, b, strict=True):
            assert math.isclose(x, y, rel_tol=1e-12)

    same(rows(first.global_deltas), rows(second.global_deltas))
    for world in first.per_world:
        one, two = first.per_world[world], second.per_world[world]
        assert one.scale_world == two.scale_world
        assert one.scale_by_strategy.keys() == two.scale_by_strategy.keys()
        for name, value in one.scale_by_strategy.items():
            assert math.isclose(value, two.scale_by_strategy[name], rel_tol=1e-12)
        same(rows(one.deltas), rows(two.deltas))


@SETTINGS
@given(req=requests(dust=True), data=st.data())
def test_columnar_book_path_matches_the_wire_path(
    req: MultiWorldRebalanceRequest, data: st.DataObject
) -> None:
    # The same positions given as codes into shuffled categories (as a caller of the fast
    # path would) plan to exactly the same deltas.
    worlds = data.draw(st.permutations(sorted({p.world_id for p in req.positions})))
    strategies = data.draw(st.permutations(sorted({p.strategy_id for p in req.positions})))
    keys = data.draw(st.permutations(sorted({(p.venue, p.symbol) for p in req.positions}, key=str)))
    book = PositionBook.from_codes(
        worlds=worlds,
        strategies=strategies,
        keys=keys,
        world=np.array([worlds.index(p.world_id) for p in req.positions], dtype=np.int64),
        strategy=np.array([strategies.index(p.strategy_id) for p in req.positions], dtype=np.int64),
        key=np.array([keys.index((p.venue, p.symbol)) for p in req.positions], dtype=np.int64),
        qty=np.array([p.qty for p in req.positions], dtype=np.float64),
        mark=np.array([p.mark for p in req.positions], dtype=np.float64),
    )
    plan = plan_book(
        book,
        allocation_inputs(req),
        min_trade_notional=req.min_trade_notional,
        lot_size_by_symbol=req.lot_size_by_symbol,
    )
    assert to_response(plan) == plan_rebalance(req)


def test_symbols_cover_lots() -> None:
    assert set(LOTS) < set(SYMBOLS)
