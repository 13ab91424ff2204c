"""Per-strategy orders against a plain-Python-loop oracle (hypothesis; SPEC 3).

The oracle walks the positions one by one: each strategy's move ``qty * (gs - 1)`` (``gs``
as served in the plan) is summed per (world, strategy, venue, symbol) with ``math.fsum``,
cancelled below ``1e-9 * sum(|qty|)``, rounded toward zero to the lot in ``Decimal`` (or to
12 significant digits with ``format``), and dropped below ``min_trade_notional`` at the
world's ``|qty|``-weighted mark. No engine helper is used to compute expected values.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from qmtl.contracts import MultiWorldRebalanceRequest, MultiWorldRebalanceResponse
from qmtl.engine import plan_rebalance, strategy_orders

from ._build import STRATEGIES, SYMBOLS, WORLDS, pos, ratios, request

SETTINGS = settings(
    max_examples=200,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
LOTS = {"AAA": 0.01, "BBB": 0.5}  # CCC has no lot
Cell = tuple[str, str, Any]  # (world, strategy, key)


# Dense books (few keys, quantities over six orders of magnitude) so that several
# strategies share a key and some of their moves are dust while others are not.
quantities = st.builds(
    lambda units, scale: units * scale,
    st.integers(-999, 999),
    st.sampled_from([0.001, 0.01, 1.0, 100.0]),
)
books = st.lists(
    st.builds(
        pos,
        st.sampled_from(WORLDS[:2]),
        st.sampled_from(STRATEGIES),
        st.sampled_from(SYMBOLS),
        quantities,
        st.integers(1, 100_000).map(lambda i: i / 100),
        st.sampled_from([None, "v1"]),
    ),
    max_size=30,
)


@st.composite
def requests(draw: st.DrawFn) -> MultiWorldRebalanceRequest:
    """Worlds that move or stay; explicit strategy maps where some strategies keep their
    ratio (scale exactly 1) and others change; lots on two of three symbols; dust."""
    before = {w: draw(st.integers(1, 300)) / 1000 for w in WORLDS}
    after = {w: before[w] if draw(st.booleans()) else draw(ratios) for w in WORLDS}
    fields: dict[str, Any] = {
        "total_equity": draw(st.sampled_from([0.0, 1_000.0, 1_000_000.0])),
        "world_alloc_before": before,
        "world_alloc_after": after,
        "positions": draw(books),
        "min_trade_notional": draw(st.sampled_from([None, 1.0, 50.0, 500.0, 5000.0])),
    }
    if draw(st.booleans()):
        fields["lot_size_by_symbol"] = LOTS
    if draw(st.booleans()):
        maps_before: dict[str, dict[str, float]] = {}
        maps_after: dict[str, dict[str, float]] = {}
        for w in draw(st.lists(st.sampled_from(WORLDS), unique=True, min_size=1)):
            names = draw(st.lists(st.sampled_from(STRATEGIES), unique=True, min_size=1))
            maps_before[w] = {s: draw(st.integers(1, 300)) / 1000 for s in names}
            maps_after[w] = {
                s: (r if draw(st.booleans()) else draw(ratios)) for s, r in maps_before[w].items()
            }
        fields["strategy_alloc_before_total"] = maps_before
        fields["strategy_alloc_after_total"] = maps_after
    return request(**fields)


def round_toward_zero(value: float, lot: float | None) -> float:
    if lot is None:
        return float(f"{value:.12g}")
    count = (Decimal(abs(value)) / Decimal(repr(lot)) + Decimal("1e-9")).to_integral_value(
        ROUND_FLOOR
    )
    return math.copysign(float(count * Decimal(repr(lot))), value) if count else 0.0


@dataclass
class Oracle:
    raw: dict[Cell, float] = field(default_factory=dict)
    rounded: dict[Cell, float] = field(default_factory=dict)
    orders: dict[Cell, float] = field(default_factory=dict)
    mark: dict[tuple[str, Any], float] = field(default_factory=dict)
    gross: dict[tuple[str, Any], float] = field(default_factory=dict)


def oracle(req: MultiWorldRebalanceRequest, plan: MultiWorldRebalanceResponse) -> Oracle:
    moves: dict[Cell, list[float]] = defaultdict(list)
    gross: dict[Cell, list[float]] = defaultdict(list)
    weights: dict[tuple[str, Any], list[tuple[float, float]]] = defaultdict(list)
    for p in req.positions:
        served = plan.per_world[p.world_id]
        gs = served.scale_by_strategy.get(p.strategy_id, served.scale_world)
        cell = (p.world_id, p.strategy_id, (p.venue, p.symbol))
        moves[cell].append(p.qty * (gs - 1))
        gross[cell].append(abs(p.qty))
        weights[(p.world_id, (p.venue, p.symbol))].append((abs(p.qty), p.mark))
    out = Oracle()
    for at, pairs in weights.items():
        total = math.fsum(w for w, _ in pairs)
        out.gross[at] = total
        out.mark[at] = (
            math.fsum(w * m for w, m in pairs) / total
            if total > 0
            else math.fsum(m for _, m in pairs) / len(pairs)
        )
    threshold = req.min_trade_notional or 0.0
    for cell, values in moves.items():
        raw = math.fsum(values)
        out.raw[cell] = raw
        if abs(raw) <= 1e-9 * math.fsum(gross[cell]):
            raw = 0.0
        qty = round_toward_zero(raw, (req.lot_size_by_symbol or {}).get(cell[2][1]))
        out.rounded[cell] = qty
        if qty != 0 and abs(qty * out.mark[(cell[0], cell[2])]) >= threshold:
            out.orders[cell] = qty
    return out


def engine_orders(
    req: MultiWorldRebalanceRequest, plan: MultiWorldRebalanceResponse
) -> dict[Cell, float]:
    split = strategy_orders(req, plan)
    return {
        (split.worlds[w], split.strategies[s], split.keys[k]): q
        for w, s, k, q in zip(
            split.world.tolist(),
            split.strategy.tolist(),
            split.key.tolist(),
            split.qty.tolist(),
            strict=True,
        )
    }


def near_threshold(req: MultiWorldRebalanceRequest, expected: Oracle, cell: Cell) -> bool:
    """A notional within float noise of the dust threshold may fall either way."""
    threshold = req.min_trade_notional or 0.0
    notional = abs(expected.rounded.get(cell, 0.0) * expected.mark[(cell[0], cell[2])])
    return threshold > 0 and abs(notional - threshold) <= 1e-9 * threshold


@SETTINGS
@given(req=requests())
def test_per_strategy_orders_equal_the_oracle(req: MultiWorldRebalanceRequest) -> None:
    plan = plan_rebalance(req)
    expected = oracle(req, plan)
    got = engine_orders(req, plan)
    for cell in set(got) | set(expected.orders):
        if near_threshold(req, expected, cell):
            continue
        assert cell in got and cell in expected.orders, cell
        want = expected.orders[cell]
        if (req.lot_size_by_symbol or {}).get(cell[2][1]) is None:
            assert math.isclose(got[cell], want, rel_tol=1e-12), (cell, got[cell], want)
        else:
            assert got[cell] == want, (cell, got[cell], want)


@SETTINGS
@given(req=requests())
def test_a_strategy_whose_scale_is_one_gets_no_order(req: MultiWorldRebalanceRequest) -> None:
    plan = plan_rebalance(req)
    for (world, strategy, _), _ in engine_orders(req, plan).items():
        served = plan.per_world[world]
        assert served.scale_by_strategy.get(strategy, served.scale_world) != 1.0


# World x1.2 at mark 10 with dust 50: s1 +100 -> +20 (notional 200, kept), s2 -99 -> -19.8
# (198, kept), but the world's netted +0.2 (notional 2) is dust: D = 0, sum = +0.2.
NETTED_TO_DUST = request(
    world_alloc_before={"w1": 0.5},
    world_alloc_after={"w1": 0.6},
    min_trade_notional=50.0,
    positions=[pos("w1", "s1", "CCC", 100, 10), pos("w1", "s2", "CCC", -99, 10)],
)


@SETTINGS
@given(req=requests())
@example(req=NETTED_TO_DUST)
def test_strategy_orders_sum_to_the_world_delta_up_to_rounding_and_dust(
    req: MultiWorldRebalanceRequest,
) -> None:
    """At each (world, key), with ``lot`` the key's lot (0 without one), ``dust`` =
    ``min_trade_notional / mark`` (units) and ``n`` the strategies whose raw move is non-zero:

        |sum_s order_s - D| <= sum_s e_s + e_world + 1e-9 * gross + 1e-12 * sum_s |move_s|

    with ``e_s = lot`` for a strategy whose order was kept (its rounding toward zero loses
    less than one lot) and ``e_s = lot + dust`` for one whose order was dropped (its rounded
    move was below the dust threshold); ``e_world`` likewise for the world delta ``D``
    (``D`` may be dust-dropped while strategy orders are not, and vice versa); ``1e-9 *
    gross`` is the noise-cancel tolerance (``gross`` = sum |qty| at the key)."""
    plan = plan_rebalance(req)
    expected = oracle(req, plan)
    got = engine_orders(req, plan)
    threshold = req.min_trade_notional or 0.0
    world_delta = {
        (world, (d.venue, d.symbol)): d.delta_qty
        for world, served in plan.per_world.items()
        for d in served.deltas
    }
    by_key: dict[tuple[str, Any], list[Cell]] = defaultdict(list)
    for cell in expected.raw:
        by_key[(cell[0], cell[2])].append(cell)
    for at, cells in by_key.items():
        lot = (req.lot_size_by_symbol or {}).get(at[1][1]) or 0.0
        dust = threshold / expected.mark[at]
        bound = 1e-9 * expected.gross[at] + 1e-12 * math.fsum(abs(expected.raw[c]) for c in cells)
        for cell in cells:
            if expected.raw[cell] != 0:
                bound += lot if cell in got else lot + dust
        bound += lot if at in world_delta else lot + dust
        total = math.fsum(got.get(c, 0.0) for c in cells)
        assert abs(total - world_delta.get(at, 0.0)) <= bound * (1 + 1e-12), (at, total, bound)
    # No strategy order at a key where no strategy of that world holds a position.
    assert {(c[0], c[2]) for c in got} <= set(by_key)


@SETTINGS
@given(req=requests())
def test_crossed_qty_is_what_netting_cancels(req: MultiWorldRebalanceRequest) -> None:
    plan = plan_rebalance(req)
    split = strategy_orders(req, plan)
    got = engine_orders(req, plan)
    crossed = {(w, k): q for w, rows in split.crossed().items() for k, q in rows}
    by_key: dict[tuple[str, Any], list[float]] = defaultdict(list)
    for (world, _, key), qty in got.items():
        by_key[(world, key)].append(qty)
    assert set(crossed) == set(by_key)
    for at, quantities in by_key.items():
        want = (math.fsum(abs(q) for q in quantities) - abs(math.fsum(quantities))) / 2
        assert math.isclose(crossed[at], want, rel_tol=1e-11, abs_tol=1e-12), (at, crossed[at])
        assert crossed[at] >= 0
